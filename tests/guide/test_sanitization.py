"""The integration guide's input sanitization (../shared/seeds, "Input Sanitization" and
"Testing"), verbatim with only the import path changed, and the limits of sanitize_dict."""

from __future__ import annotations

import pytest

from pynomaly_security import InputSanitizer, SanitizationConfig


def test_the_guide_example_runs_as_written() -> None:
    """The guide's config, string and dictionary examples give the guide's results."""
    # Create sanitizer with custom config
    config = SanitizationConfig(
        level="strict",
        max_length=5000,
        allow_html=False
    )
    sanitizer = InputSanitizer(config)

    # Sanitize input data
    user_input = "<script>alert('xss')</script>Hello World"
    clean_input = sanitizer.sanitize_string(user_input)
    # Result: "Hello World" (script removed)

    # Sanitize entire dictionaries
    data = {
        "name": "<script>evil</script>John",
        "email": "john@example.com",
        "comment": "This is a test with 'quotes'"
    }
    clean_data = sanitizer.sanitize_dict(data)

    assert clean_input == "Hello World"
    assert clean_data == {
        "name": "John",
        "email": "john@example.com",
        "comment": "This is a test with 'quotes'",
    }
    assert sanitizer.max_length == 5000 and sanitizer.allow_html is False


def test_xss_protection() -> None:
    """The guide's test section, as written: a default sanitizer drops the script."""
    sanitizer = InputSanitizer()
    malicious_input = "<script>alert('xss')</script>Hello"
    clean_output = sanitizer.sanitize_string(malicious_input)
    assert "<script>" not in clean_output
    assert clean_output == "Hello"


def test_sanitize_dict_cleans_nested_dicts_and_lists_keys_included() -> None:
    """Every string at any depth is cleaned, keys too; numbers, booleans and None pass."""
    sanitizer = InputSanitizer(SanitizationConfig(level="strict", max_length=10))
    data = {
        "<b>user</b>": {"tags": ["<i>a</i>", ("<u>b</u>", 3)], "bio": "0123456789abc"},
        "ok": True,
        "n": None,
    }
    assert sanitizer.sanitize_dict(data) == {
        "user": {"tags": ["a", ("b", 3)], "bio": "0123456789"},
        "ok": True,
        "n": None,
    }


def test_sanitize_dict_refuses_what_is_too_deep_or_too_large() -> None:
    """Past max_depth or max_items the whole call raises a ValueError naming the limit
    and where; nothing half-cleaned is returned."""
    sanitizer = InputSanitizer(SanitizationConfig(max_depth=3, max_items=10))
    assert sanitizer.sanitize_dict({"a": {"b": "<b>x</b>"}}) == {"a": {"b": "x"}}
    too_deep = r"^value nested too deeply to sanitize \(at \$\.a\.b\[0\]\)$"
    with pytest.raises(ValueError, match=too_deep):
        sanitizer.sanitize_dict({"a": {"b": ["x"]}})
    too_many = r"^value has too many items to sanitize \(at \$\.k\[\d+\]\)$"
    with pytest.raises(ValueError, match=too_many):
        sanitizer.sanitize_dict({"k": list(range(20))})
    # The default bound: ten thousand items.
    with pytest.raises(ValueError, match="too many items"):
        InputSanitizer().sanitize_dict({"k": ["x"] * 10_001})


def test_sanitize_dict_refuses_values_it_cannot_clean() -> None:
    """Bytes, sets and objects hold text the sanitizer cannot see: refused, not passed."""
    sanitizer = InputSanitizer()
    for bad in (b"<script>", {"<script>"}, object()):
        with pytest.raises(TypeError, match=r"^cannot sanitize a \w+ value \(at \$\.v\)$"):
            sanitizer.sanitize_dict({"v": bad})
    with pytest.raises(TypeError, match="takes a dict"):
        sanitizer.sanitize_dict(["<b>x</b>"])  # type: ignore[arg-type]


def test_a_config_and_keywords_together_are_refused() -> None:
    """One source of options: a config plus keywords is a ConfigurationError."""
    from pynomaly_security import ConfigurationError

    with pytest.raises(ConfigurationError, match="not both"):
        InputSanitizer(SanitizationConfig(), max_length=5)
    with pytest.raises(ConfigurationError, match="max_items must be >= 1"):
        InputSanitizer(SanitizationConfig(max_items=0))
