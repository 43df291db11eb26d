"""Each lockfile format on our own small fixtures (``data/locks``), its errors, and unsafe XML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pynomaly_security.vulns.lockfiles import LockfileError, Package, parse, scan_tree

LOCKS = Path(__file__).parent / "data" / "locks"
SHA = "0123456789abcdef0123456789abcdef01234567"


def _by_name(path: Path) -> dict[str, Package]:
    return {p.name: p for p in parse(path)}


def _pairs(path: Path) -> set[tuple[str, str | None]]:
    return {(p.name, p.version) for p in parse(path)}


# --- npm family ------------------------------------------------------------------


def test_yarn_classic() -> None:
    """A header of several ranges is one package; an alias is the real one; git keeps its commit."""
    packages = _by_name(LOCKS / "yarn1" / "yarn.lock")
    assert _pairs(LOCKS / "yarn1" / "yarn.lock") == {
        ("@scope/lib", "1.2.0"),
        ("plain", "2.0.1"),
        ("plain", "1.0.3"),
        ("fromgit", "0.3.0"),
    }
    assert packages["@scope/lib"].line == 5
    assert packages["fromgit"].commit == SHA


def test_yarn_berry() -> None:
    """Names come from ``resolution``; patches are the patched package; workspaces are skipped."""
    packages = _by_name(LOCKS / "berry" / "yarn.lock")
    assert _pairs(LOCKS / "berry" / "yarn.lock") == {
        ("@scope/lib", "1.2.0"),
        ("plain", "2.0.1"),
        ("resolve", "1.22.8"),
        ("fromgit", "0.3.0"),
    }
    assert packages["fromgit"].commit == SHA
    assert packages["plain"].line == 15


@pytest.mark.parametrize("case", ["pnpm5", "pnpm6", "pnpm9"])
def test_pnpm_versions_and_peer_suffixes(case: str) -> None:
    """5.x ``/name/1.0_peer``, 6.x ``/name@1.0(peer)``, 9.x ``name@1.0``: one name, one version."""
    packages = _by_name(LOCKS / case / "pnpm-lock.yaml")
    assert packages["plain"].version == "2.0.1"
    assert packages["@scope/lib"].version == "1.2.0"
    assert packages["plain"].direct


def test_pnpm_specifics() -> None:
    """dev from pnpm 5/6, a registry host in a 5.x key, a git tarball with its commit in 9.x."""
    v5 = _by_name(LOCKS / "pnpm5" / "pnpm-lock.yaml")
    assert v5["@scope/lib"].dev and not v5["plain"].dev
    assert v5["hosted"].version == "3.0.0"
    v9 = _by_name(LOCKS / "pnpm9" / "pnpm-lock.yaml")
    assert (v9["fromgit"].version, v9["fromgit"].commit) == ("0.3.0", SHA)


# --- Python --------------------------------------------------------------------


def test_pipfile_lock() -> None:
    packages = _by_name(LOCKS / "pipenv" / "Pipfile.lock")
    assert (packages["plain"].version, packages["plain"].dev) == ("2.0.1", False)
    assert (packages["checker"].version, packages["checker"].dev) == ("0.9", True)
    assert packages["plain"].note == "python_version >= '3.8'"


def test_uv_lock() -> None:
    """The project's own (editable) entry is skipped; its dev group marks ``checker``."""
    packages = _by_name(LOCKS / "uv" / "uv.lock")
    assert set(packages) == {"plain", "checker", "fromgit"}
    assert packages["checker"].dev and packages["checker"].scope == "dev"
    assert packages["fromgit"].commit == SHA
    assert packages["plain"].line == 14


def test_pdm_lock() -> None:
    packages = _by_name(LOCKS / "pdm" / "pdm.lock")
    assert not packages["plain"].dev and packages["checker"].dev


def test_pylock() -> None:
    """PEP 751: a VCS package without version is reported unpinned; a directory is the project."""
    packages = _by_name(LOCKS / "pylock" / "pylock.toml")
    assert set(packages) == {"plain", "fromgit"}
    assert packages["fromgit"].version is None and packages["fromgit"].commit == SHA
    assert "no version" in packages["fromgit"].note


# --- Maven and Gradle ---------------------------------------------------------------


def test_pom_with_local_parent() -> None:
    """Properties (child over parent), management, inheritance, profiles, scopes, ranges."""
    packages = _by_name(LOCKS / "maven" / "app" / "pom.xml")
    assert set(packages) == {
        "org.example:managed",
        "org.example:sibling",
        "org.example:ranged",
        "org.example:tester",
        "org.example:profiled",
        "org.example:everywhere",
    }  # not the inactive profile's, not the plugin's
    managed = packages["org.example:managed"]
    assert (managed.version, managed.scope) == ("3.2.0", "runtime")  # the child's property
    assert packages["org.example:sibling"].version == "7"  # project.version from the parent
    assert packages["org.example:ranged"].version is None
    assert "range" in packages["org.example:ranged"].note
    assert packages["org.example:tester"].dev
    assert packages["org.example:everywhere"].version == "0.5"
    assert "parent" in packages["org.example:everywhere"].note
    assert all(p.direct for p in packages.values())
    assert packages["org.example:managed"].line == 14


def test_pom_whose_parent_is_elsewhere(tmp_path: Path) -> None:
    """A version that only a missing parent could give is reported, naming that parent."""
    (tmp_path / "pom.xml").write_text(
        "<project><parent><groupId>g</groupId><artifactId>p</artifactId><version>1</version>"
        "</parent><dependencies><dependency><groupId>g</groupId><artifactId>a</artifactId>"
        "</dependency></dependencies></project>",
        encoding="utf-8",
    )
    (package,) = parse(tmp_path / "pom.xml")
    assert package.version is None and "g:p:1 is not available locally" in package.note


def test_gradle_lockfile() -> None:
    packages = parse(LOCKS / "gradle" / "gradle.lockfile")
    named = {p.name: p for p in packages}
    assert named["org.example:plain"].scope == "compileClasspath,runtimeClasspath"
    assert not named["org.example:plain"].dev and named["org.example:checker"].dev
    (bad,) = [p for p in packages if p.version is None]
    assert (bad.line, bad.note) == (4, "not a gradle lockfile entry")


def test_verification_metadata() -> None:
    packages = parse(LOCKS / "gradle" / "gradle" / "verification-metadata.xml")
    assert {(p.name, p.version, p.line) for p in packages} == {
        ("org.example:plain", "2.0.1", 4),
        ("org.example:nameless-version", None, 7),
    }


# --- unsafe and malformed input ----------------------------------------------------

XXE = """<?xml version="1.0"?>
<!DOCTYPE project [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<project><dependencies><dependency><groupId>&secret;</groupId></dependency></dependencies></project>
"""
LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE project [
 <!ENTITY a "aaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<project><name>&c;</name></project>
"""


@pytest.mark.parametrize("text", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
@pytest.mark.parametrize("name", ["pom.xml", "verification-metadata.xml"])
def test_xml_with_a_dtd_is_refused(tmp_path: Path, name: str, text: str) -> None:
    """No DOCTYPE is accepted, so no entity is ever declared, fetched or expanded."""
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(LockfileError, match=rf"{name}: line 2: refused: DTDForbidden"):
        parse(tmp_path / name)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("yarn.lock", 'a@^1:\n  version "1"\n stray\nb@^2:\n', r"yarn\.lock: line 4: .*no version"),
        ("yarn.lock", '  version "1"\n', r"yarn\.lock: line 1: an indented field"),
        (
            "yarn.lock",
            "__metadata:\n  version: 8\nx@npm:1:\n  - [\n",
            r"yarn\.lock: line 5: invalid YAML",
        ),
        (
            "pnpm-lock.yaml",
            "lockfileVersion: '6.0'\npackages:\n  /nover: {}\n",
            r"line 3: not a pnpm",
        ),
        ("pnpm-lock.yaml", "- a\n", r"pnpm-lock\.yaml: line 1: not a pnpm-lock\.yaml mapping"),
        ("Pipfile.lock", '{"default": [1]}', r"Pipfile\.lock: line 1: `default` is not an object"),
        ("uv.lock", '[[package]]\nname = "a"\n', r"uv\.lock: line 2: package 'a' has no version"),
        ("pdm.lock", "package = 3\n", r"pdm\.lock: line 1: `package` is not an array"),
        ("pylock.toml", "[[packages]]\nname = 'a'\n", r"pylock\.toml: line 1: not a pylock"),
        ("pom.xml", "<project>\n<dependencies>\n</project>\n", r"pom\.xml: line 3: invalid XML"),
        ("pom.xml", "<settings/>", r"pom\.xml: line 1: not a pom: root element <settings>"),
        ("verification-metadata.xml", "<x/>", r"line 1: not verification metadata"),
        (
            "composer.lock",
            '{"packages": [{"name": "a/b"}]}',
            r"line 1: package 'a/b' has no version",
        ),
        ("package-lock.json", b"\xff\xfe{}", r"package-lock\.json: line 1: not utf-8"),
    ],
)
def test_malformed_names_file_and_line(
    tmp_path: Path, name: str, text: str | bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(LockfileError, match=message):
        parse(path)


def test_tree_scan_goes_on_past_bad_files(tmp_path: Path) -> None:
    """Bad files are listed with their error; the good ones are read; node_modules is not."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "pom.xml").write_text("<project", encoding="utf-8")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "gradle.lockfile").write_text("g:a:1.0=compileClasspath\n", encoding="utf-8")
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / "package-lock.json").write_text("{", encoding="utf-8")
    packages, errors = scan_tree(tmp_path)
    assert [(p.name, p.version) for p in packages] == [("g:a", "1.0")]
    assert len(errors) == 1 and errors[0].startswith(f"{tmp_path / 'a' / 'pom.xml'}: line 1:")


def test_unknown_file_name_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "Gemfile.lock").write_text("", encoding="utf-8")
    with pytest.raises(LockfileError, match="not a lockfile this version reads"):
        parse(tmp_path / "Gemfile.lock")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("package-lock.json", '{"packages": {"": [], "node_modules/a": {"version": "1"}}}'),
        ("package-lock.json", '{"dependencies": {"a": {"version": "1", "dependencies": "x"}}}'),
        ("pnpm-lock.yaml", "lockfileVersion: '9.0'\nimporters: 3\npackages: x\n"),
        ("poetry.lock", '[[package]]\nname = "a"\nversion = "1"\ngroups = 3\nsource = 2\n'),
        (
            "uv.lock",
            '[[package]]\nname = "a"\nversion = "1"\nsource = { editable = "." }\n'
            "[package.dev-dependencies]\ndev = 5\n",
        ),
        ("composer.lock", '{"packages": [{"name": "a/b", "version": "1", "source": []}]}'),
        ("yarn.lock", "__metadata:\n  version: 8\nx@npm:1: 7\n"),
    ],
)
def test_odd_shapes_read_or_refuse_cleanly(tmp_path: Path, name: str, text: str) -> None:
    """A well-formed file with values of unexpected types never escapes as another exception."""
    (tmp_path / name).write_text(text, encoding="utf-8")
    packages, errors = scan_tree(tmp_path)  # scan_tree lets only LockfileError through
    assert all(isinstance(p, Package) for p in packages)
    assert all(e.startswith(f"{tmp_path / name}: line ") for e in errors)


@pytest.mark.parametrize(
    "spec",
    [
        "requests==2.31.0",
        "Django==4.2",
        "zope.interface==6.0",
        "a==1",
        "my_pkg-x==10.0.1",
        "wheel-1.0-py3-none-any.whl==1.0",  # a name that is a file: path or URL
        "pkg.zip==2.0",
        "pkg==1.0a1",  # not a plain release: the full parser
        "pkg==1.0.*",
        "pkg==v1.0",
        "-pkg==1.0",
        "pkg_==1.0",
        "pkg==1.",
        "pkg==01.002",
        "PKG==1.0.0.0.0",
    ],
)
def test_simple_pins_read_as_the_full_parser_reads_them(
    spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shortcut for ``name==1.2.3`` gives the Package packaging's parser gives."""
    from pynomaly_security.vulns.lockfiles import requirements

    fast = requirements._requirement(tmp_path / "r.txt", 3, spec)
    monkeypatch.setattr(requirements, "_SIMPLE_PIN", re.compile(r"(?!)"))  # never matches
    assert fast == requirements._requirement(tmp_path / "r.txt", 3, spec)
