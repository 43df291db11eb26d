"""The request inspector: one object the middleware and the replay tool share.

``Inspector.inspect(parts, route_policy=None) -> Verdict``:

1. the route policy (settings exclusions for ``parts.route`` / the path,
   merged with the optional ``route_policy`` the caller built from the
   endpoint, see :mod:`~pynomaly_security.detection.exemptions`) may exempt
   the route or some fields; body fields named like credentials
   (:class:`~pynomaly_security.detection.policy.CredentialFields`) are never
   scanned, and a finding that may quote a credential keeps no excerpt;
2. every value is extracted (:mod:`~pynomaly_security.detection.extract`),
   read as Starlette and FastAPI read it; a request past one of the
   :class:`~pynomaly_security.detection.types.InspectionLimits` (values,
   value length, JSON depth, headers, parts, CPU budget), ambiguous (two
   ``Content-Type`` headers...) or unusable (JSON ``NaN``) gives
   ``Verdict(reject_status=4xx, reject_reason=...)``: nothing is cut and
   passed uninspected;
3. excluded fields and values that conform to a typed field are skipped;
   plain values (letters, digits, ``_``, ``-``) only get the few rules for
   encoded payloads (base64 gadget names); the rest are normalized once and
   matched by all active rules in one RE2 pass, whose matches are confirmed by
   the exact rule and its check. A long value is normalized in metered pieces
   (:func:`~pynomaly_security.detection.normalize.normalize`), then its
   normalized text is scanned whole, in overlapping segments of
   :data:`SEGMENT_CHARS`, with the CPU budget checked between them: the overlap
   is on the text the rules read, so a payload up to :data:`SEGMENT_OVERLAP`
   characters long is seen whole wherever it lands, however long its raw form
   (collapsing blanks, comments, escapes);
4. anomaly scoring as in the OWASP Core Rule Set: each rule counts once per
   request with its highest score; the request is blocked when the score of
   the families in block mode reaches the level's threshold.

References:
    OWASP CRS anomaly scoring and paranoia levels:
    https://coreruleset.org/docs/concepts/paranoia_levels/
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from pynomaly_security.detection._engine import Hit, RuleEngine
from pynomaly_security.detection.budget import Budget
from pynomaly_security.detection.extract import SECRET_HEADERS, HeaderSelector, extract_fields
from pynomaly_security.detection.noise import incidental
from pynomaly_security.detection.normalize import Spend, is_plain, normalize, percent_decode
from pynomaly_security.detection.policy import (
    DEFAULT_CREDENTIAL_FIELDS,
    REDACTED,
    CredentialFields,
    ExclusionTable,
    RoutePolicy,
    conforms,
    context_score,
    field_excluded,
)
from pynomaly_security.detection.rules import ALL_RULES
from pynomaly_security.detection.rules.xss import ENCODED_MARKUP_CHAR, encoded_markup_char
from pynomaly_security.detection.types import (
    InspectionLimits,
    InspectionRefused,
    RequestParts,
    RuleFinding,
    Verdict,
)
from pynomaly_security.exceptions import ConfigurationError

if TYPE_CHECKING:
    from pynomaly_security.settings import SecuritySettings

__all__ = ["THRESHOLDS", "Inspector"]

THRESHOLDS: Mapping[int, int] = {1: 8, 2: 5, 3: 4, 4: 3}
"""Anomaly score that blocks, per detection level (CRS's default is 5)."""

EXCERPT_CHARS = 40
PLAIN_SCAN_MIN = 5
"""Plain values this long still get the few ``Rule.plain`` rules (base64)."""
# Upload names that would run as server code (CRS 933110/933111).
_FILENAME_FIELDS = (".filename", "header.x-filename", "header.x_filename", "header.x-file-name")
_SCRIPT_UPLOAD = re.compile(
    r"(?i)\.\s*(?:php\d*|phtml|phar|pht|phps|pgif|shtml|jsp|jspx|asp|aspx|asa|cer)\b[\s.]*(?:\.\w{1,5})?$"
)
# Upload names that overwrite the server's own configuration (CRS 932180's
# restricted-upload list), however the extension's dot is written
# (``wp-config-php.bak``, ``config.yml ``): access rules, secrets, framework config.
_CONFIG_UPLOAD = re.compile(
    r"(?i)(?:^|[/\\])\s*(?:\.ht(?:access|digest|passwd)|\.env|\.boto|\.user\.ini|wp-config"
    r"|(?:default[._-])?settings(?:[._-]local)?[._\s-]+php"
    r"|(?:config(?:_(?:dev|prod|test))?|parameters|routing|security|services)[._\s-]+ya?ml"
    r"|local[._\s-]+xml)(?:$|[._\s-])"
)
# (pattern, family, rule id) checked on upload names only.
_UPLOAD_RULES = (
    (_SCRIPT_UPLOAD, "code_injection", "code-script-upload"),
    (_CONFIG_UPLOAD, "cmdi", "cmdi-config-upload"),
)
_MODES = ("block", "detect")
SQLI_EDGE_MODES = ("block", "detect", "sink_confirmed")
"""What SQL injection findings do at the edge: block the request; only report it;
or report it as sink-confirmed and let the SQL sink block the statement it would
change (what ``SQLI_EDGE_MODE=auto`` means when the sink blocks)."""
_DIGITS = re.compile(r"\d{4,}")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")
SEGMENT_CHARS = 65_536
"""Normalized values longer than this are scanned in segments (each overlapping the
next by :data:`SEGMENT_OVERLAP`), with the CPU budget checked between segments."""
SEGMENT_OVERLAP = 1_024  # longer than any rule's match span (bounded repeats <= 400)
BUDGET_MIN_BYTES = 8_192
"""Requests with this much path, query and body have their inspection's CPU time
measured from the start; smaller ones from their first budget check (after
:data:`~pynomaly_security.detection.budget.BUDGET_CHECK_UNITS` units of work,
large header values for instance)."""
HIT_UNITS = 512
"""Budget units a rule match costs on top of the text: confirming it runs the rule
again and its check (markup parsing, SQL tokens), about 0.2 ms for a short value
with matches, which its few characters would not count."""
_CLEAN = Verdict()  # immutable: every clean request shares it
_MEMO_MAX_VALUE = 512  # longer values are rarely repeated; never memoized
_MEMO_MAX_ENTRIES = 8192  # the memo is emptied when full: bounded memory, no LRU upkeep
_MEMO_MAX_TEXT = 2 * _MEMO_MAX_VALUE  # normalized text of a kept entry (its hits hold it)
_MAX_REMEMBERED_NAME = 128  # longer field names are checked each time, not kept


def _no_spend(_: int) -> None:
    """A short value's normalization is not metered: it is bounded by its length
    (the caller counts the text it scans)."""


def _encodable(text: str) -> str:
    """``text`` with lone surrogates (JSON ``"\\ud800"``, a decoded ``\\ud800``
    escape) replaced: RE2, log lines and audit records take UTF-8 only."""
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _encoded_markup(raw: str, spend: Spend) -> Hit | None:
    """The hit of ``xss-encoded-markup-char`` (a level-1 rule, so active at every
    level) in ``raw``: it reads the value percent-decoded but not entity-decoded,
    where ``&#0000060`` and ``&lt;`` still differ (the normalized text has ``<`` for
    both). Most values hold no ``%``, ``&`` or ``\\`` and cost three lookups."""
    if "%" in raw:
        raw = percent_decode(raw, spend=spend)
    elif "&" not in raw and "\\" not in raw:
        return None
    spend(len(raw))
    score, start, end = encoded_markup_char(raw)
    if not score:
        return None
    return Hit(ENCODED_MARKUP_CHAR, score, start, end, _encodable(raw))


def _refused(exc: InspectionRefused) -> Verdict:
    return Verdict(reject_status=exc.status, reject_reason=exc.reason)


def _excerpt(text: str, start: int, end: int) -> str:
    """The matched fragment only, shortened, with long digit runs masked."""
    piece = text[start:end]
    if len(piece) > EXCERPT_CHARS:
        piece = piece[: EXCERPT_CHARS - 1] + "…"
    piece = _DIGITS.sub(lambda m: "#" * len(m.group(0)), piece)
    return _UNPRINTABLE.sub(" ", piece)


class Inspector:
    """Inspects every user-controlled value of a request and scores it.

    Args:
        level: 1 (lenient) .. 4 (paranoid): which rules run and the threshold.
        mode: ``"block"`` or ``"detect"`` (report only).
        mode_overrides: per-family mode, e.g. ``{"xss": "detect"}``.
        exclusions: route -> field names not inspected (``"*"``: the route).
        inspect_headers: header names (``x-*`` wildcard) whose values are inspected;
            ``*`` (the default) is every header an app may read (all but framing,
            connection and trace-context headers; never ``Authorization``).
        credential_fields: keys of fields holding credentials (passwords, one-time
            codes, tokens): not inspected in a body, never quoted in a finding.
        secret_headers: an app's own API-key headers, besides
            :data:`~pynomaly_security.detection.extract.SECRET_HEADERS`: inspected,
            but never kept in the value memo (it would hold the secret), nor by a
            caller's memory of requests (:attr:`secret_headers`).
        max_input_length: longest value (characters); a longer one is refused
            (413 ``value_too_long``), never cut.
        max_json_depth: deeper JSON bodies are rejected with 400.
        limits: the other bounds (:class:`InspectionLimits`); ``max_input_length``
            and ``max_json_depth`` override its value length and depth.
        clock: the CPU clock the budget reads (seconds; tests inject one).
        sqli_edge: one of :data:`SQLI_EDGE_MODES`: whether a request whose only
            blocking findings are SQL injection is blocked here (``block``), passed
            and reported (``detect``), or passed as ``sink_confirmed`` for the SQL
            sink to block (only right when that sink is installed in block mode).
            A request with a finding of another blocking family is blocked as ever.
        sink_ready: with ``sink_confirmed``, whether the sink has shown it sees the
            app's statements (a hooked driver checked one during a request); until
            then SQL injection is blocked here. ``None``: trusted from the start.
        discount_noise: a match of a few symbols inside a machine-made value (token,
            blob, beacon, sensor string) scores half
            (:func:`~pynomaly_security.detection.noise.incidental`).
    """

    def __init__(
        self,
        *,
        level: int = 2,
        mode: str = "block",
        mode_overrides: Mapping[str, str] | None = None,
        exclusions: Mapping[str, Sequence[str]] | None = None,
        inspect_headers: Sequence[str] = ("*",),
        credential_fields: Sequence[str] = DEFAULT_CREDENTIAL_FIELDS,
        secret_headers: Sequence[str] = (),
        max_input_length: int = 1_048_576,
        max_json_depth: int = 64,
        limits: InspectionLimits | None = None,
        clock: Callable[[], float] = time.thread_time,
        sqli_edge: str = "block",
        discount_noise: bool = True,
        sink_ready: Callable[[], bool] | None = None,
    ) -> None:
        if max_input_length < 1 or max_json_depth < 1:
            raise ConfigurationError("max_input_length and max_json_depth must be >= 1")
        if sqli_edge not in SQLI_EDGE_MODES:
            raise ConfigurationError(
                f"sqli_edge must be one of {', '.join(SQLI_EDGE_MODES)}, got {sqli_edge!r}"
            )
        self._sqli_edge = sqli_edge
        self._sink_ready = sink_ready
        self.discount_noise = discount_noise
        self._listeners: list[Callable[[], None]] = []
        self.reconfigure(level=level, mode=mode, mode_overrides=mode_overrides)
        self.max_input_length = max_input_length
        self.max_json_depth = max_json_depth
        self.limits = dataclasses.replace(
            limits or InspectionLimits(),
            max_value_length=max_input_length,
            max_json_depth=max_json_depth,
        )
        self._max_headers = self.limits.max_headers
        self._clock = clock
        self._exclusions = ExclusionTable(exclusions)
        self._has_exclusions = bool(self._exclusions)
        self._headers = HeaderSelector(inspect_headers)
        self._credentials = CredentialFields(credential_fields)
        self._secret_fields: dict[str, bool] = {}
        """Field name -> whether it holds a credential (bounded, like the memos)."""
        secrets = SECRET_HEADERS | {name.lower() for name in secret_headers}
        self.secret_headers = frozenset(name.encode("latin-1") for name in secrets)
        """Raw names of the headers whose values are secrets (cookies, API keys)."""
        self._unkept_fields = tuple(
            "cookie." if name == "cookie" else f"header.{name}" for name in sorted(secrets)
        )
        """Fields whose values are never memoized: cookies and the secret headers."""

    def reconfigure(
        self, *, level: int, mode: str, mode_overrides: Mapping[str, str] | None = None
    ) -> None:
        """Set the detection level and modes (at start-up, and for a live change):
        the rules of the level, its threshold; memoized scans and the listeners'
        memories (:meth:`on_reconfigure`) are forgotten, since they hold verdicts
        of the rules that ran before."""
        if level not in THRESHOLDS:
            raise ConfigurationError(f"detection level must be 1..4, got {level!r}")
        overrides = dict(mode_overrides or {})
        for value in (mode, *overrides.values()):
            if value not in _MODES:
                raise ConfigurationError(f"detection mode must be block or detect, got {value!r}")
        if getattr(self, "level", None) != level:
            active = [rule for rule in ALL_RULES if rule.level <= level]
            self._engine = RuleEngine(active)
            self._plain_engine = RuleEngine([rule for rule in active if rule.plain])
        self.level = level
        self.mode = mode
        self.mode_overrides = overrides
        self.threshold = THRESHOLDS[level]
        # New dicts, not clear(): a verdict of the old rules is never kept in them.
        self._memo: dict[str, tuple[int, tuple[Hit, ...]]] = {}
        self._path_memo: dict[str, tuple[int, tuple[Hit, ...]]] = {}
        for listener in self._listeners:
            listener()

    def on_reconfigure(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every :meth:`reconfigure` (a memory of verdicts
        to forget, like the inspection layer's memory of clean requests)."""
        self._listeners.append(listener)

    @property
    def sqli_edge(self) -> str:
        """What a request whose only blocking findings are SQL injection gets now:
        ``sink_confirmed`` waits for the sink's first statement (``sink_ready``)."""
        if self._sqli_edge == "sink_confirmed" and not (
            self._sink_ready is None or self._sink_ready()
        ):
            return "block"
        return self._sqli_edge

    @classmethod
    def from_settings(
        cls,
        settings: SecuritySettings,
        *,
        sql_sink_blocks: bool | None = None,
        sink_ready: Callable[[], bool] | None = None,
    ) -> Inspector:
        """The inspector configured by ``detection_*``, ``inspect_headers``,
        ``sqli_edge_mode`` and the ``inspection`` section. ``sql_sink_blocks``:
        whether the SQL sink is installed in block mode for the app (``None``: as
        the settings say); ``sqli_edge_mode=auto`` leaves SQL injection to it then,
        once ``sink_ready`` says a hooked driver has checked one of the app's
        statements (an app whose driver is not hooked keeps the edge blocking)."""
        if sql_sink_blocks is None:
            sql_sink_blocks = (
                settings.sql_injection_protection and settings.sql_injection_mode == "block"
            )
        edge: str = settings.sqli_edge_mode
        if edge == "auto":
            edge = "sink_confirmed" if sql_sink_blocks else "block"
        return cls(
            sqli_edge=edge,
            sink_ready=sink_ready,
            level=settings.detection_level,
            mode=settings.detection_mode,
            mode_overrides=settings.detection_mode_overrides,
            exclusions=settings.detection_exclusions,
            inspect_headers=settings.inspect_headers,
            credential_fields=settings.credential_fields,
            secret_headers=settings.api_key_headers,
            max_input_length=settings.max_input_length,
            max_json_depth=settings.inspection.max_json_depth,
            # The settings section names the same bounds (its fields are validated there).
            limits=InspectionLimits(**settings.inspection.model_dump()),
        )

    def clear_memo(self) -> None:
        """Forget memoized scans (benchmarks time cold passes with it)."""
        self._memo.clear()
        self._path_memo.clear()

    def reads_header(self, raw_name: bytes) -> bool:
        """Whether :meth:`inspect` reads the header ``raw_name`` (ASGI, lowercase)."""
        return bool(self._headers.role_of(raw_name))

    def _text(self, raw: str, is_path: bool, spend: Spend, max_chars: int) -> str:
        """The normalized text of one value, metered by ``spend`` and no longer than
        ``max_chars`` (:func:`normalize`; 413 ``value_too_long`` past it)."""
        value = raw
        if is_path and not value.isascii():
            # raw_path arrives decoded as latin-1; read its UTF-8 back.
            value = value.encode("latin-1", "replace").decode("utf-8", "replace")
        return _encodable(normalize(value, spend=spend, max_chars=max_chars))

    def _scan(self, raw: str, is_path: bool) -> tuple[int, tuple[Hit, ...]]:
        """(length of the normalized text, rule hits) of one short value."""
        engine = self._engine
        if is_plain(raw):
            if len(raw) < PLAIN_SCAN_MIN:
                return len(raw), ()
            engine = self._plain_engine  # only encoded-payload rules
        text = self._text(raw, is_path, _no_spend, self.max_input_length)
        hits = engine.scan(text)
        if engine is self._engine:  # a plain value holds no escape
            encoded = _encoded_markup(raw, _no_spend)
            if encoded is not None:
                hits.append(encoded)
        return len(text), tuple(hits)

    def _match(
        self,
        fields: list[tuple[str, str]],
        policy: RoutePolicy | None,
        budget: Budget,
        best: dict[str, RuleFinding],
    ) -> None:
        """Scan every field into ``best`` (rule id -> its strongest finding); raises
        :class:`InspectionRefused` for a value too long or past the budget."""
        memo = self._memo
        path_memo = self._path_memo
        max_length = self.max_input_length
        secret_fields = self._secret_fields
        unkept = self._unkept_fields
        spend = budget.spend
        for name, raw in fields:
            if not raw:
                continue
            secret = secret_fields.get(name)
            if secret is None:
                secret = self._is_credential(name)
            if secret and name.startswith("body."):
                continue  # a password is opaque data the app hashes: not scanned, not kept
            if policy is not None:
                if policy.exempt_fields and field_excluded(name, policy.exempt_fields):
                    continue
                field_type = policy.typed_fields.get(name)
                if field_type is not None and conforms(raw, field_type):
                    continue
            if name.endswith(_FILENAME_FIELDS):
                for pattern, family, rule_id in _UPLOAD_RULES:
                    upload = pattern.search(raw[-256:])
                    if upload is not None:
                        excerpt = _encodable(upload.group(0)[:EXCERPT_CHARS])
                        finding = RuleFinding(family, rule_id, _encodable(name), excerpt, 5)
                        best.setdefault(rule_id, finding)
            length = len(raw)
            if length <= _MEMO_MAX_VALUE:
                # Route paths, user agents and common query values repeat across
                # requests: the scan of a short value is memoized (bounded), so a
                # repeated value costs one dict lookup. The path has its own memo: it
                # is decoded differently (_text). A credential, a cookie or an API key
                # is scanned the same way but never memoized (the memo would hold it).
                kept = not secret and not name.startswith(unkept)
                table = path_memo if name == "path" else memo
                cached = table.get(raw) if kept else None
                if cached is None:
                    cached = self._scan(raw, name == "path")
                    # Counted as the text scanned (NFKC may have made it 18 times
                    # longer) and the rule checks its matches ran.
                    spend(cached[0] + 16 + HIT_UNITS * len(cached[1]))
                    # Expanded ones are not kept (memory).
                    if kept and cached[0] <= _MEMO_MAX_TEXT:
                        if len(table) >= _MEMO_MAX_ENTRIES:
                            table.clear()
                        table[raw] = cached
                self._record(name, cached[1], best)
                continue
            if length > max_length:
                raise InspectionRefused(413, "value_too_long")
            # Long values: normalized in metered pieces, then the normalized text is
            # scanned whole, in segments overlapping on that text, the budget
            # checked between them.
            engine = self._plain_engine if is_plain(raw) else self._engine
            text = self._text(raw, name == "path", spend, max_length)
            size = len(text)
            for start in range(0, size, SEGMENT_CHARS):
                segment = text[start : start + SEGMENT_CHARS + SEGMENT_OVERLAP]
                spend(len(segment))
                hits = engine.scan(segment, spend)
                spend(HIT_UNITS * len(hits))
                self._record(name, hits, best)
                if start + SEGMENT_CHARS + SEGMENT_OVERLAP >= size:
                    break
            encoded = _encoded_markup(raw, spend)
            if encoded is not None:
                self._record(name, (encoded,), best)

    def _is_credential(self, name: str) -> bool:
        """Whether field ``name`` holds a credential; remembered for short names."""
        secret = bool(self._credentials) and self._credentials(name)
        if len(name) <= _MAX_REMEMBERED_NAME:
            if len(self._secret_fields) >= _MEMO_MAX_ENTRIES:
                self._secret_fields.clear()
            self._secret_fields[name] = secret
        return secret

    def _without_credentials(
        self, findings: tuple[RuleFinding, ...], body: bytes
    ) -> tuple[RuleFinding, ...]:
        """``findings`` with no excerpt where it may quote a credential: a field named
        like one (a query ``password``, an ``X-API-Key``), or a body read whole as
        text that names one (a login sent as ``text/plain``)."""
        names_one: bool | None = None
        kept: list[RuleFinding] = []
        for finding in findings:
            private = self._credentials(finding.field)
            if not private and finding.field == "body":
                if names_one is None:
                    names_one = self._credentials.named_in(body)
                private = names_one
            kept.append(dataclasses.replace(finding, excerpt=REDACTED) if private else finding)
        return tuple(kept)

    def _record(self, name: str, hits: Sequence[Hit], best: dict[str, RuleFinding]) -> None:
        noise = self.discount_noise
        for hit in hits:
            rule_id = hit.rule.rule_id
            # The field decides too: a URL in a Referer is no SSRF (policy.context_score).
            score = context_score(name, hit.rule.family, hit.score, rule_id)
            if noise and not hit.rule.plain and incidental(hit.text, hit.start, hit.end):
                # A few symbols matched by chance inside a token, blob or sensor
                # string (detection/noise.py) count half: alone they block nothing,
                # with other evidence (an attack padded with noise) they still add.
                # Rules for encoded payloads (plain) are meant to match inside such
                # values and count whole.
                score //= 2
            known = best.get(rule_id)
            if score > 0 and (known is None or score > known.score):
                best[rule_id] = RuleFinding(
                    hit.rule.family,
                    rule_id,
                    _encodable(name),
                    # hit.text: the normalized value or its shell reading, whichever matched.
                    _encodable(_excerpt(hit.text, hit.start, hit.end)),
                    score,
                )

    def blocks_family(self, family: str) -> bool:
        return self.mode_overrides.get(family, self.mode) == "block"

    def policy_for(
        self, route: str | None, path: str, endpoint_policy: RoutePolicy | None = None
    ) -> RoutePolicy | None:
        """The policy :meth:`inspect` applies to a request for ``path`` (matched to the
        template ``route``, when known): the settings exclusions merged with
        ``endpoint_policy`` (the endpoint's, as ``inspect``'s ``route_policy``)."""
        if not self._has_exclusions:
            return endpoint_policy
        table_policy = self._exclusions.lookup(route, path)
        return endpoint_policy if table_policy is None else table_policy.merged(endpoint_policy)

    def inspect(self, parts: RequestParts, *, route_policy: RoutePolicy | None = None) -> Verdict:
        """Score ``parts``; ``route_policy`` adds the endpoint's exemptions/types."""
        policy = route_policy
        if self._has_exclusions:
            policy = self.policy_for(parts.route, parts.path, route_policy)
        if policy is not None and policy.exempt:
            return _CLEAN
        limits = self.limits
        size = len(parts.body) + len(parts.query_string) + len(parts.path)
        budget = Budget(limits.budget_ms, clock=self._clock, started=size >= BUDGET_MIN_BYTES)
        best: dict[str, RuleFinding] = {}
        try:
            fields = extract_fields(parts, self._headers, limits=limits, budget=budget)
            self._match(fields, policy, budget, best)
        except InspectionRefused as exc:
            return _refused(exc)
        if not best:
            return _CLEAN
        findings = tuple(best.values())
        if self._credentials:
            findings = self._without_credentials(findings, parts.body)
        score = sum(f.score for f in findings)
        blocking = sum(f.score for f in findings if self.blocks_family(f.family))
        blocked = blocking >= self.threshold
        sink_confirmed = False
        if blocked and self.sqli_edge != "block":
            # Only SQL injection would block: a value that can only matter at a
            # database is left to the sink (or reported). Any other blocking family
            # keeps the request blocked here: the sink sees SQL, not markup or shells.
            others = sum(
                f.score for f in findings if f.family != "sqli" and self.blocks_family(f.family)
            )
            if others == 0:
                blocked = False
                sink_confirmed = self._sqli_edge == "sink_confirmed"
        return Verdict(
            findings=findings,
            score=score,
            blocked=blocked,
            families=frozenset(f.family for f in findings),
            sink_confirmed=sink_confirmed,
        )
