"""Cross-site scripting: script tags, event-handler attributes,
``javascript:``/``data:`` URLs, SVG/MathML and other active tags, attribute
breaking, template-expression and DOM sinks.

Plain markup is not an attack: a comment field with ``<p align=center>`` or
``<img src=a.png alt=x>`` is ordinary. For tags with attributes the rule asks
``nh3`` (the ammonia sanitizer) what survives sanitizing, and scores only
when something active was removed (an ``on*`` handler, a script URL, a
dangerous tag), so ordinary HTML in content fields stays allowed.

References:
    OWASP CRS REQUEST-941-APPLICATION-ATTACK-XSS; OWASP XSS Filter Evasion
    Cheat Sheet; nh3: https://nh3.readthedocs.io/
"""

# ruff: noqa: E501  (rule tables: one pattern per line reads better than split regexes)
from __future__ import annotations

import re

import nh3
import re2

from pynomaly_security.detection.rules._base64 import base64_alternation
from pynomaly_security.detection.rules.base import CRITICAL, ERROR, NOTICE, WARNING, Rule

__all__ = ["ENCODED_MARKUP_CHAR", "RULES", "encoded_markup_char"]

NH3_WINDOW = 4096

_ACTIVE_TAGS = (
    r"iframe|frame|frameset|object|embed|applet|svg|math|meta|base|link|style|form|isindex"
    r"|xml|xss|marquee|bgsound|layer|ilayer|template|portal|animate|animatetransform|set"
    r"|handler|listener|image|video|audio|source|track|details|dialog|keygen|textarea|select"
    r"|button|input|body|html|noscript|plaintext|xmp|foreignobject|use|script"
)
_TAG = re2.compile(r"<([a-z][a-z0-9:-]*)([^<>]*)")
_ATTR = re2.compile(r"([a-z:-]+)\s*=")
_ACTIVE = frozenset(_ACTIVE_TAGS.split("|"))
_RISKY_VALUE = re2.compile(
    r"(?:javascript|vbscript|livescript)\s*:|data\s*:\s*text/html|expression\s*\("
)


_PLAIN_STYLESHEET = re2.compile(r"""\bhref\s*=\s*["']?[\w./-]{1,200}\.(?:xsl|xslt|css)["'\s?]""")


def _foreign_stylesheet(text: str, start: int, end: int) -> int:
    """CRITICAL for an ``<?xml-stylesheet`` processing instruction unless it names a
    plain stylesheet file (``href="style.xsl"``): a ``data:``, ``javascript:`` or
    ``#`` (inline) sheet, or none at all (``style=expression()`` follows), runs
    the attacker's transform or script."""
    return 0 if _PLAIN_STYLESHEET.search(text[start:end]) else CRITICAL


def _called(text: str, start: int, end: int) -> int:
    """CRITICAL unless the name ends a longer identifier (``1alert(1)``, ``xalert``
    call nothing)."""
    if start and (text[start - 1].isalnum() or text[start - 1] in "_$"):
        return 0
    return CRITICAL


def _split_word(text: str, start: int, end: int) -> int:
    """CRITICAL when a blank cuts a word of the scheme's name (``ja vascript:``);
    0 for the two words written apart (``Java script: a language``)."""
    parts = text[start:end].rstrip(":").split()
    return 0 if len(parts) < 2 or parts in (["java", "script"], ["vb", "script"]) else CRITICAL


def _markup(text: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for tag in _TAG.finditer(text):
        name = tag.group(1)
        found.add((name, ""))
        for attr in _ATTR.finditer(tag.group(2)):
            found.add((name, attr.group(1)))
    return found


def _sanitizer_removes_active(text: str, start: int, end: int) -> int:
    """Score when nh3 strips an active tag, an ``on*`` handler or a script URL."""
    window = text[max(0, start - 16) : start + NH3_WINDOW]
    cleaned = nh3.clean(window)
    removed = _markup(window) - _markup(cleaned.lower())
    for tag, attr in removed:
        if attr.startswith("on") or attr in ("style", "formaction", "srcdoc", "xlink:href"):
            return CRITICAL
        if not attr and tag in _ACTIVE:
            return ERROR
    if _RISKY_VALUE.search(window) and removed:
        return CRITICAL
    return 0


_HANDLERS = (
    r"abort|activate|after|animation|auxclick|before|begin|blur|bounce|can|change|click|close"
    r"|content|context|copy|cue|cut|dbl|drag|drop|durationchange|emptied|end|error|finish"
    r"|focus|formdata|fullscreen|hashchange|input|invalid|key|load|lose|message|mouse|move"
    r"|offline|online|open|page|paste|pause|play|pointer|popstate|progress|propertychange"
    r"|ratechange|readystatechange|repeat|reset|resize|scroll|search|seek|select|show"
    r"|slotchange|stalled|start|storage|submit|suspend|timeupdate|toggle|touch|transition"
    r"|unload|volumechange|waiting|webkit|wheel|zoom|help|loadstart|security|trigger"
)

# Script-running markup as it reads base64-encoded (a data: URI's or a parameter's
# content the app or the browser decodes).
_MARKUP_B64 = base64_alternation(
    ("<script", "<iframe", "<svg/onload", "<svg onload", "<svg xmlns", "javascript:", "onerror=")
)

# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("xss-script-tag", "xss", r"<\s*/?\s*script\b", CRITICAL),
    Rule("xss-event-handler-tag", "xss", r"<[a-z!/][^>]{0,400}[\s/\"'`]on[a-z]{3,}\s*=", CRITICAL),
    Rule("xss-event-handler", "xss", r"(?:^|[\s\"'`/;])on(?:" + _HANDLERS + r")[a-z]*\s*=", CRITICAL),
    Rule("xss-event-handler-generic", "xss", r"(?:^|[\s\"'`;/0-9=])on[a-z]{3,25}\s*=", ERROR),
    Rule("xss-dangerous-tag", "xss", r"<\s*/?\s*(?:svg|math|iframe|frame|frameset|object|embed|applet|meta|base|isindex|import|plaintext|xmp|portal|bgsound|layer|ilayer|vmlframe|handler|listener|svg:[a-z]+|xml:[a-z]+|\?import)\b|<\s*/?\s*[a-z]{0,10}:(?:vmlframe|svg|math|iframe|frame|object|embed|applet|script|handler|listener)\b", CRITICAL),
    Rule("xss-cookie-write", "xss", r"document\s*\.\s*cookie\s*=[^=]|\+adw-|\+ad4-", CRITICAL),
    Rule("xss-xml-stylesheet", "xss", r"<\?xml-stylesheet\b[^>]{0,400}", CRITICAL, check=_foreign_stylesheet),
    Rule("xss-namespaced-markup", "xss", r"<[a-z]+[^>]{0,100}\bxmlns:(?:xss|t|ev|x|v|html)\b|<\s*(?:xss|svg|html|t|ev|x|v|xhtml|xlink|math):[a-z]+[\s>]", ERROR),
    Rule("xss-indirect-call", "xss", r"\(\s*(?:alert|prompt|confirm|eval)\s*\)\s*\(|(?:alert|prompt|confirm|eval)\s*\?\.\s*\(|=\s*(?:alert|prompt|confirm|eval)\s*[,;]|\b(?:top|self|parent|window|this|frames|globalthis)\s*\[\s*['\"][^'\"]{0,20}['\"]\s*(?:\+\s*['\"][^'\"]{0,20}['\"]\s*)*\]\s*\(|\d\.\.tostring\s*\(\s*\d+\s*\)|['\"]\s*[;,)]\s*(?:alert|prompt|confirm)\s*\(", CRITICAL),
    Rule("xss-probe-call", "xss", r"(?:alert|prompt|confirm)\s*(?:\(\s*(?:\d+|['\"`][^'\"`]{0,40}['\"`]|document\.\w+|/[^/]{0,40}/|\w*)\s*\)|`[^`]{0,40}`|\.\s*(?:call|apply)\s*\()", CRITICAL, check=_called),
    Rule("xss-js-entity", "xss", r"&\{[^}]{0,200}\}", CRITICAL),
    Rule("xss-data-binding", "xss", r"\b(?:datasrc|datafld|dataformatas)\s*=", CRITICAL),
    Rule("xss-spaced-tag", "xss", r"<\s*(?:f\s+o\s*r\s*m|s\s+c\s*r\s*i\s*p\s*t|i\s+f\s*r\s*a\s*m\s*e|s\s+v\s*g|o\s+b\s*j\s*e\s*c\s*t|e\s+m\s*b\s*e\s*d|i\s+m\s*g)\b|<\s*(?:[a-z]\s+){3,}[a-z]\b", CRITICAL),
    Rule("xss-css-url-js", "xss", r"url\s*\(\s*['\"]?\s*(?:javascript|vbscript|data\s*:\s*text/html)", CRITICAL),
    Rule("xss-jsfuck", "xss", r"(?:!\s*\[\s*\][\s+()\[\]!]{0,20}){3,}", CRITICAL),
    Rule("xss-js-uri", "xss", r"(?:mocha\s*:|(?:j\s*a\s*v\s*a|v\s*b|l\s*i\s*v\s*e)\s*s\s*c\s*r\s*i\s*p\s*t\s*:)(?:[^v\s]|v[^o]|\s+[\w.$\[\]'\"]+\s*[(`=])", CRITICAL),
    Rule("xss-data-uri", "xss", r"data\s*:\s*(?:text/html|image/svg\+xml|text/xml|application/(?:x-)?(?:javascript|ecmascript|xhtml\+xml))", CRITICAL),
    # A script scheme with a blank or control character (an entity such as &tab; or
    # &newline; decoded) inside its name: browsers drop them, nobody types them.
    Rule("xss-js-uri-split", "xss", r"(?:j\s*a\s*v\s*a|v\s*b)\s*s\s*c\s*r\s*i\s*p\s*t\s*:", CRITICAL, check=_split_word),
    # document's cookie or domain reached by brackets or a spaced dot (comments removed):
    # (document)["cookie"], document /**/ . cookie
    Rule("xss-dom-obfuscated", "xss", r"\bdocument\s*\)?\s*\[\s*['\"`]\s*(?:cookie|domain|write|location)|\bdocument(?:\s+\.\s*|\s*\.\s+)(?:cookie|domain|write)\b", CRITICAL),
    # XML Events: a handler attribute bound to an event by the XML Events namespace.
    Rule("xss-xml-events", "xss", r"xmlns:[a-z]+\s*=\s*['\"]?\s*https?://www\.w3\.org/2001/xml-events|\b[a-z]+:handler\s*=\s*['\"]?[^'\"\s>]{0,100}#", CRITICAL),
    Rule("xss-base64-markup", "xss", _MARKUP_B64, CRITICAL, plain=True),
    # A call through a tagged template: [].sort.call`${alert}1`, Reflect.apply``
    Rule("xss-tagged-call", "xss", r"\.\s*(?:call|apply|bind)\s*`", CRITICAL),
    # A link or source whose host is an IP written as one number or in octal or hex
    # (http://3232235777/, http://0300.0250.1.1/): a filter evasion, never typed.
    Rule("xss-obfuscated-ip-url", "xss", r"\b(?:href|src|action|formaction|data|background|poster)\s*=\s*['\"`]?\s*(?:https?:)?//(?:\d{8,10}|0x[0-9a-f]{6,8}|0\d{1,3}(?:\.0*\d{1,4}){1,3}|(?:\d{1,3}\.){0,3}0x[0-9a-f]{1,8}(?:\.(?:0x[0-9a-f]{1,2}|\d{1,3})){0,3})(?:[/:?#'\"`\s>]|$)", CRITICAL),
    Rule("xss-active-tag", "xss", r"<\s*/?\s*(?:" + _ACTIVE_TAGS + r")\b", WARNING),
    Rule("xss-markup", "xss", r"<[a-z][a-z0-9:-]*[\s/][^>]{0,400}=", ERROR, check=_sanitizer_removes_active),
    Rule("xss-attr-break", "xss", r"[\"'`]\s*/?\s*>\s*<\s*[a-z/!]|[\"'`]\s+(?:style|src|href)\s*=", ERROR),
    Rule("xss-close-tag", "xss", r"</\s*(?:textarea|style|noscript|script|iframe|xmp|template)\s*>", WARNING),
    Rule("xss-js-sink", "xss", r"\b(?:alert|prompt|confirm|eval|settimeout|setinterval|execscript|msgbox|print)\s*(?:\(|`)|\b(?:alert|prompt|confirm)\s*\.\s*(?:call|apply|bind)\b|\[\s*['\"](?:alert|eval)['\"]\s*\]", WARNING),
    Rule("xss-dom-cookie", "xss", r"document\s*\.\s*(?:cookie|domain|write)\b", ERROR),
    Rule("xss-dom", "xss", r"\bdocument\s*\.\s*(?:writeln|location|body|forms|getelementby)|\bwindow\s*\.\s*(?:location|name|open|onerror)|\.\s*(?:innerhtml|outerhtml)\s*=|\bfromcharcode\b|\blocation\s*\.\s*(?:href|hash|search|replace)\b|\b(?:top|self|parent|frames)\s*\[\s*['\"]|\.constructor\s*\(|\batob\s*\(|\bimport\s*\(\s*['\"`]", WARNING),
    Rule("xss-css-expression", "xss", r"expression\s*\(|-moz-binding|behavior\s*:\s*url|@import\s*['\"]?\s*(?:url|javascript)", ERROR),
    # CSS that loads code: an XBL binding (Firefox) or an HTC behavior (IE) from a URL.
    Rule("xss-css-binding", "xss", r"(?:-moz-binding|behavior)\s*:\s*url\s*\(", CRITICAL),
    # expression( with its parenthesis as a CSS escape (\28): only a filter evasion writes it.
    Rule("xss-css-expression-escaped", "xss", r"expression\s*\\0{0,4}28", CRITICAL),
    Rule("xss-template", "xss", r"\{\{[^}]{0,200}(?:constructor|\$on|\$eval|alert|\$\$|prompt|confirm)[^}]{0,200}\}\}", CRITICAL),
    Rule("xss-vector-attr", "xss", r"\b(?:srcdoc|formaction|xlink:href|from|to|values|attributename)\s*=\s*[\"'`]?\s*(?:javascript|data|&#|<)", ERROR),
    # Out of a JavaScript string and back in: ';location=name;' '-alert(1)-'
    Rule("xss-js-string-breakout", "xss", r"['\"`]\s*(?:;|\+|-|\*|\|\||&&|,|\^)\s*(?:[a-z_$][\w$]*\s*(?:\.\s*[a-z_$][\w$]*\s*|\[[^\]]{1,40}\]\s*)*(?:=\s*[^;'\"`]{1,80}|\([^)]{0,80}\))|(?:new\s+)?[a-z_$][\w$]*\s*`[^`]{0,80}`)\s*(?:(?:;|\+|-|\*|\|\||&&|,|\^)\s*(?://[^\n]*)?['\"`]?|//[^\n]*)\s*$", CRITICAL),
    # Links and forms to another origin with no scheme (//evil.example): the
    # shape of reflected HTML injection (phishing markup) in a page echoing input.
    Rule("xss-html-offsite", "xss", r"<\s*(?:a|form|area|base|link|iframe|frame|img|meta|button|input|embed|object)\b[^>]{0,200}\b(?:href|action|src|formaction|data|content)\s*=\s*['\"]?\s*(?:[\w.-]*;\s*url\s*=\s*)?(?://|\\\\)[\w.-]", CRITICAL),
    # Markup that names elements (id=/name=): DOM clobbering and injected
    # structure; weighed by field (policy.context_score): in a URL it is
    # reflected HTML injection, in a body field ordinary content.
    Rule("xss-html-named-element", "xss", r"<\s*[a-z][\w-]*\s[^<>]{0,200}\b(?:id|name)\s*=\s*['\"]?[\w-]", NOTICE),
    Rule("xss-lt-alpha", "xss", r"<[a-z!/?]", NOTICE, level=3),
)
# fmt: on


# -- markup characters written the way filters miss (inline: reads another text) ------
#
# ``<`` ``>`` ``"`` ``'`` and the backtick as a reference or escape no encoder
# writes: a numeric reference padded with zeros (``&#0000060``, ``&#x003c``), left
# unterminated (``&#60``: browsers still decode it), with a capital ``X``
# (``&#X3C;``), a capital or unterminated name (``&LT``), a JavaScript escape
# (``\x3c``, ``\u003c``) or a CSS one (``\3c``). The normalized text cannot tell
# these from ``&lt;`` (it decodes them all to ``<``), so the inspector gives this
# rule the value percent-decoded only (normalize.percent_decode). A value that is
# nothing but such characters is a filter probe (the XSS filter-evasion lists
# send each form alone) and scores critical; a padded or unterminated reference
# inside other text adds a warning. ``&lt;``, ``&#60;``, ``&#x3c;`` and the
# ``&#039;``/``&#034;`` that PHP and JSTL write are what encoders produce for
# ordinary escaped text: they never score.
_CODES_DEC = "(?:60|62|34|39|96)"
_CODES_HEX = "(?:3[cCeE]|2[27]|60)"
# Each form starts with & or \ and ends in no blank, so the whole-value pattern
# (forms separated by blanks) can split a value one way only: linear in Python's re.
_FORM = (
    rf"&#0*{_CODES_DEC}(?![0-9]);?"
    rf"|&#[xX]0*{_CODES_HEX}(?![0-9a-fA-F]);?"
    r"|&(?:lt|gt|quot|LT|GT|QUOT)(?![A-Za-z0-9]);?"
    rf"|\\(?:x|u00){_CODES_HEX}|\\u\{{0*{_CODES_HEX}\}}"
    rf"|\\0{{0,4}}{_CODES_HEX}(?![0-9a-fA-F])"
)
_FORMS = re.compile(_FORM)
_ONLY_FORMS = re.compile(rf"\s*(?:{_FORM})(?:\s*(?:{_FORM}))*\s*")
# What encoders write for escaped text: not evasion (PHP's htmlspecialchars and
# JSTL write the quotes with a zero: &#039; &#034;).
_ORDINARY = re.compile(rf"&#{_CODES_DEC};|&#0(?:39|34);|&#x{_CODES_HEX};|&(?:lt|gt|quot);")
# Inside text: a decimal reference with two leading zeros or more, a hex one with
# any, or either without its ';'.
_IN_TEXT = re.compile(
    rf"&#(?:0{{2,}}{_CODES_DEC}(?![0-9]);?|0?{_CODES_DEC}(?![0-9;])"
    rf"|[xX]0+{_CODES_HEX}(?![0-9a-fA-F]);?|[xX]{_CODES_HEX}(?![0-9a-fA-F;]))"
)

ENCODED_MARKUP_CHAR = Rule("xss-encoded-markup-char", "xss", _FORM, CRITICAL)
"""Applied by the inspector to the percent-decoded value (:func:`encoded_markup_char`),
not in the rule set over the normalized text: its ``pattern`` documents the forms."""


def encoded_markup_char(decoded: str) -> tuple[int, int, int]:
    """``(score, start, end)`` of evasion-encoded markup characters in ``decoded``
    (a value percent-decoded, not entity-decoded); score 0 when there are none."""
    if "&" not in decoded and "\\" not in decoded:
        return 0, 0, 0
    if _ONLY_FORMS.fullmatch(decoded) is not None:
        for form in _FORMS.finditer(decoded):
            if _ORDINARY.fullmatch(form.group()) is None:
                return CRITICAL, form.start(), form.end()
        return 0, 0, 0
    if "&#" in decoded:
        found = _IN_TEXT.search(decoded)
        if found is not None:
            return WARNING, found.start(), found.end()
    return 0, 0, 0
