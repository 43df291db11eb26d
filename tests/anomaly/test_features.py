"""Feature extraction on crafted requests (issue 22, item 6)."""

from __future__ import annotations

import pytest

from pynomaly_security.anomaly.features import (
    CHAR_CLASSES,
    char_mask,
    endpoint_of,
    extract,
    secret_names,
    shape_of,
)


def _classes(mask: int) -> set[str]:
    return {name for bit, name in enumerate(CHAR_CLASSES) if mask >> bit & 1}


@pytest.mark.parametrize(
    ("value", "classes"),
    [
        pytest.param("abc", {"lower"}, id="lower"),
        pytest.param("Ab9", {"lower", "upper", "digit"}, id="mixed"),
        pytest.param("1' OR '1'='1", {"digit", "upper", "space", "'", "="}, id="sqli"),
        pytest.param("a@b.c", {"lower", "@", "."}, id="email"),
        pytest.param("Añadir", {"upper", "lower", "latin_letter"}, id="latin-1"),
        pytest.param("x\r\ny", {"lower", "control"}, id="crlf"),
        pytest.param("\u20ac", {"other_high"}, id="beyond-latin-1"),
    ],
)
def test_character_classes(value: str, classes: set[str]) -> None:
    """Each character falls in one class; punctuation characters are classes of their own."""
    assert _classes(char_mask(value)) == classes


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        pytest.param("john.doe@x.com", "a.a@a.a", id="email"),
        pytest.param("555-1234", "9-9", id="phone"),
        pytest.param("Vino Rioja", "a a", id="words"),
        pytest.param("", "", id="empty"),
        pytest.param("x" * 10 + "-" + "9" * 50, "a-9", id="runs-fold"),
    ],
)
def test_shapes(value: str, shape: str) -> None:
    """Letters become a, digits 9, runs fold: a phone number made of letters changes shape."""
    assert shape_of(value) == shape


def test_long_shapes_are_cut() -> None:
    """Shapes of free text are bounded and marked as cut."""
    assert shape_of("a-" * 100).endswith("~") and len(shape_of("a-" * 100)) == 25


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/items/42", "/items/{n}"),
        ("/users/0b9d6c1e-5a4f-4c55-9f0e-1234567890ab/orders", "/users/{n}/orders"),
        ("/tienda1/publico/anadir.jsp", "/tienda1/publico/anadir.jsp"),
        ("/7", "/{n}"),
        ("/", "/"),
    ],
)
def test_identifier_segments_fold_into_one_endpoint(path: str, endpoint: str) -> None:
    """Ids in paths are one endpoint, so /items/42 and /items/7 share a profile."""
    assert endpoint_of(path) == endpoint


def test_query_form_and_json_parameters() -> None:
    """Query pairs, form fields and JSON members are parameters, with source and length."""
    f = extract(
        "post",
        "/tienda1/publico/anadir.jsp",
        "id=3&nombre=Vino+Rioja",
        "precio=100&B1=A%F1adir",
        "application/x-www-form-urlencoded; charset=latin-1",
        ["Host", "Content-Type", "Cookie"],
    )
    assert f.method == "POST" and f.extension == "jsp" and f.depth == 3
    assert [(p.name, p.source, p.length) for p in f.params] == [
        ("id", "q", 1),
        ("nombre", "q", 10),
        ("precio", "b", 3),
        ("B1", "b", 6),
    ]
    assert "latin_letter" in _classes(f.params[3].mask)  # %F1 read as latin-1: ñ
    assert f.header_names == {"host", "content-type", "cookie"} and f.body_type == "form"
    j = extract("POST", "/items", "", '{"name": "Lamp", "dims": {"w": 3}}', "application/json", [])
    assert [(p.name, p.shape) for p in j.params] == [("name", "a"), ("dims.w", "9")]


def test_credentials_keep_no_value_digest() -> None:
    """A password's value leaves no trace but its shape and length (and no field keeps text)."""
    f = extract(
        "POST",
        "/login",
        "",
        "username=alice&New-Password=hunter2",
        "application/x-www-form-urlencoded",
        [],
        salt=b"s" * 16,
        secret_fields=secret_names(["new_password"]),
    )
    user, password = f.params
    assert user.digest is not None and password.digest is None
    assert "hunter2" not in repr(f) and "alice" not in repr(f)


def test_malformed_json_and_caps() -> None:
    """Bad JSON is one opaque parameter; parameters past the cap are not read."""
    f = extract("POST", "/x", "", "{not json", "application/json", [])
    assert [p.name for p in f.params] == ["(json)"]
    many = "&".join(f"p{i}=1" for i in range(500))
    assert len(extract("GET", "/x", many, "", "", []).params) == 64


def test_json_nested_past_the_recursion_limit_is_one_opaque_value() -> None:
    """JSON deeper than Python can parse (inspection off) is not an error of ours."""
    deep = "[" * 100_000 + "]" * 100_000
    f = extract("POST", "/x", "", deep, "application/json", [])
    assert [p.name for p in f.params] == ["(json)"]
