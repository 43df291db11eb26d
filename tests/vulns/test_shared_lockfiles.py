"""Every shared lockfile case (``../shared/datasets/lockfiles``, 84 valid + 13 malformed).

Each file of ``MANIFEST.tsv`` has an entry below: how many packages come out and
which (name, version) pairs must be among them, or the error it must give. A file
of the manifest without an entry fails the test, so a new case cannot go untested.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pynomaly_security.vulns.lockfiles import LockfileError, Package, parse, scan_tree
from pynomaly_security.vulns.lockfiles.maven import parse_pom
from tests.conftest import require_shared

N = None  # shorthand: no pinned version

# case file -> (number of packages, pairs that must be among them)
VALID: dict[str, tuple[int, set[tuple[str, str | None]]]] = {
    # --- npm
    "npm/package-lock-v1-one-package/package-lock.json": (1, {("wrappy", "1.0.2")}),
    "npm/package-lock-v1-nested-dependencies-dup/package-lock.json": (
        39,
        {("supports-color", "6.1.0"), ("supports-color", "2.0.0"), ("supports-color", "5.5.0")},
    ),
    "npm/package-lock-v2-scoped-packages/package-lock.json": (
        2,
        {("@babel/code-frame", "7.0.0"), ("wrappy", "1.0.2")},
    ),
    "npm/package-lock-v2-nested-dependencies-dup/package-lock.json": (
        2,
        {("supports-color", "6.1.0"), ("supports-color", "2.0.0")},
    ),
    "npm/package-lock-v2-alias/package-lock.json": (
        3,
        {("@babel/code-frame", "7.0.0"), ("string-width", "5.1.2"), ("string-width", "4.2.0")},
    ),
    "npm/package-lock-v2-commits/package-lock.json": (
        13,
        {("ansi-styles", "1.0.0"), ("is-number-3", "2.0.0"), ("is-number-3", "3.0.0")},
    ),
    "npm/package-lock-v3-bundled-dependencies/package-lock.json": (
        3,
        {("ansi-regex", "6.2.2"), ("semver", "7.7.2"), ("strip-ansi", "7.1.2")},
    ),
    "npm/yarn-v1-multiple-versions/yarn.lock": (
        4,
        {("define-property", "0.2.5"), ("define-property", "1.0.0"), ("define-property", "2.0.2")},
    ),
    "npm/yarn-v1-with-aliases/yarn.lock": (
        3,
        {
            ("ansi-regex", "5.0.1"),
            ("ansi-regex", "6.0.1"),
            ("@babel/helper-validator-identifier", "7.22.20"),
        },
    ),
    "npm/yarn-berry-with-prerelease/yarn.lock": (
        2,
        {("@nicolo-ribaudo/chokidar-2", "2.1.8-no-fsevents.3"), ("gensync", "1.0.0-beta.2")},
    ),
    "npm/yarn-berry-scoped-packages/yarn.lock": (
        3,
        {("@babel/cli", "7.16.8"), ("@babel/code-frame", "7.16.7")},
    ),
    "npm/pnpm-v5-peer-dependencies-advanced/pnpm-lock.yaml": (
        9,
        {("@typescript-eslint/eslint-plugin", "5.13.0"), ("tsutils", "3.21.0")},
    ),
    "npm/pnpm-v6-peer-dependencies-advanced/pnpm-lock.yaml": (
        5,
        {("react-dom", "18.3.0-canary-ab31a9ed2-20230824"), ("js-tokens", "4.0.0")},
    ),
    "npm/pnpm-v9-peer-dependencies-advanced/pnpm-lock.yaml": (
        13,
        {("@typescript-eslint/eslint-plugin", "5.62.0"), ("typescript", "4.9.5")},
    ),
    "npm/pnpm-v9-commits/pnpm-lock.yaml": (2, {("ansi-regex", "6.0.1"), ("is-number", "7.0.0")}),
    "npm/osv-scanner-locks-many-with-insecure/package-lock.json": (1, {("ansi-html", "0.0.1")}),
    "npm/osv-scanner-locks-insecure/package-lock.json": (1, {("ansi-html", "0.0.1")}),
    "npm/osv-scanner-locks-insecure/yarn.lock": (1, {("ansi-html", "0.0.1")}),
    "npm/osv-scanner-fix-in-place-npm/package-lock.json": (
        106,
        {("ajv", "6.12.6"), ("minimist", "1.2.8")},
    ),
    # --- PyPI
    "pypi/requirements-example/requirements.txt": (
        12,
        {("docopt", "0.6.1"), ("pandas", "2.2.3"), ("requests", N), ("urllib3", N), ("pytest", N)},
    ),
    "pypi/requirements-example/other-requirements.txt": (1, {("pandas", "2.2.3")}),
    "pypi/requirements-with-versions/requirements.txt": (
        11,
        {
            ("nltk", "3.2.2"),
            ("qwerty", "0.1"),  # a backslash continuation
            ("yolo", "1.0"),  # ===
            ("asdf", N),  # ==0.7.*
            ("pkg.dot.name", "5.0.0"),
            ("newspaper3k", N),
        },
    ),
    "pypi/requirements-per-req-options/requirements.txt": (
        18,
        {
            ("foo1", "1.0"),
            ("foo5", "1.0"),
            ("foo9", "1.0"),  # options continued on the next line
            ("foo13", "1.0"),
            ("foo14", "1.0"),  # -C
            ("foo17--hash", "1.0"),
            ("foo18-Client", "1.0"),
            ("foo10==", N),  # no version: reported as no requirement
        },
    ),
    "pypi/poetry-multiple-packages-v2/poetry.lock": (
        11,
        {("proto-plus", "1.22.0"), ("proto-plus", "1.23.0"), ("faker", "33.3.0")},
    ),
    "pypi/poetry-source-git/poetry.lock": (1, {("ike", "0.2.0")}),
    "pypi/pipfile-lock-multiple-packages/Pipfile.lock": (
        5,
        {("pluggy", "1.0.1"), ("pluggy", "1.0.0"), ("markupsafe", "2.1.1")},
    ),
    "pypi/pipfile-lock-two-packages/Pipfile.lock": (
        2,
        {("itsdangerous", "2.1.2"), ("markupsafe", "2.1.1")},
    ),
    "pypi/uv-grouped-packages/uv.lock": (14, {("black", "24.10.0"), ("emoji", "2.14.0")}),
    "pypi/uv-source-git/uv.lock": (1, {("ruff", "0.8.1")}),
    "pypi/pdm-two-packages/pdm.lock": (2, {("six", "1.16.0"), ("toml", "0.10.2")}),
    "pypi/pdm-dev-dependency/pdm.lock": (3, {("pyroute2", "0.7.11"), ("win-inet-pton", "1.1.0")}),
    "pypi/pdm-git-dependency/pdm.lock": (1, {("toml", "0.10.2")}),
    "pypi/pylock-pip-full/pylock.toml": (5, {("packaging", "25.0"), ("wheel", "0.45.1")}),
    "pypi/pylock-pdm-full/pylock.toml": (10, {("requests", "2.27.1"), ("urllib3", "1.26.20")}),
    "pypi/pylock-commits/pylock.toml": (7, {("mleroc", "0.1.0"), ("tqdm", "4.67.1")}),
    "pypi/osv-scanner-locks-requirements/requirements.txt": (
        3,
        {("flask", "1.0.0"), ("django", "1.11.29"), ("requests", "2.20.0")},
    ),
    "pypi/osv-scanner-locks-requirements/requirements.prod.txt": (1, {("django", "2.2.24")}),
    "pypi/osv-scanner-locks-requirements/requirements-dev.txt": (1, {("black", "25.1.0")}),
    "pypi/osv-scanner-locks-requirements/my-requirements.txt": (1, {("flask", "1.0.0")}),
    "pypi/osv-scanner-locks-requirements/requirements-transitive.txt": (
        4,
        {("numpy", "2.3.1"), ("django", "1.11.29")},  # the -r include's packages too
    ),
    "pypi/osv-scanner-locks-requirements/unresolvable-requirements.txt": (
        3,
        {("flask-cors", "1.0.0"), ("pandas", "0.23.4")},
    ),
    "pypi/osv-scanner-locks-requirements/the_requirements_for_test.txt": (1, {("numpy", "2.3.1")}),
    "pypi/osv-scanner-locks-scalibr/uv.lock": (2, {("emoji", "2.14.0"), ("protobuf", "4.25.5")}),
    # --- Packagist
    "packagist/composer-one-package/composer.lock": (1, {("sentry/sdk", "2.0.4")}),
    "packagist/composer-two-packages/composer.lock": (
        2,
        {("sentry/sdk", "2.0.4"), ("theseer/tokenizer", "1.1.3")},
    ),
    "packagist/composer-two-packages-alt/composer.lock": (
        2,
        {("sentry/sdk", "2.0.4"), ("theseer/tokenizer", "1.1.3")},
    ),
    "packagist/composer-drupal-packages/composer.lock": (
        4,
        {
            ("drupal/core", "10.4.5"),
            ("drupal/tfa", "2.0.0-alpha4"),
            ("drupal/field_time", "1.0.0-beta5"),
        },
    ),
    "packagist/composer-duplicate-packages/composer.lock": (
        3,
        {("sentry/sdk", "2.0.4"), ("sentry/sdk", "2.0.5"), ("sentry/sdk", "3.0.0-dev")},
    ),
    "packagist/composer-one-package-dev/composer.lock": (1, {("sentry/sdk", "2.0.4")}),
    "packagist/osv-scanner-locks-insecure/composer.lock": (1, {("league/flysystem", "1.0.8")}),
    "packagist/osv-scanner-locks-many-with-insecure/composer.lock": (
        6,
        {("drupal/simple_sitemap", "4.2.1"), ("league/flysystem", "1.0.8")},
    ),
    "packagist/osv-scanner-locks-many/composer.lock": (1, {("sentry/sdk", "2.0.4")}),
    # --- Maven (direct dependencies of the pom)
    "maven/pom-one-package/pom.xml": (1, {("org.apache.maven:maven-artifact", "1.0.0")}),
    "maven/pom-two-packages/pom.xml": (
        2,
        {("io.netty:netty-all", "4.1.42.Final"), ("org.slf4j:slf4j-log4j12", "1.7.25")},
    ),
    "maven/pom-with-dependency-management/pom.xml": (
        2,
        {("io.netty:netty-all", "4.1.9")},  # an explicit version wins over management
    ),
    "maven/pom-with-scope/pom.xml": (2, {("abc:xyz", "1.2.3"), ("junit:junit", "4.12")}),
    "maven/pom-encoding/pom.xml": (1, {("junit:junit", "4.12")}),
    "maven/pom-interpolation/pom.xml": (
        3,
        {
            ("org.mine:mypackage", "1.0.0"),
            ("org.mine:my.package", "2.3.4"),
            ("org.mine:ranged-package", N),  # a version range is no pin
        },
    ),
    "maven/pom-transitive/pom.xml": (
        3,
        {("org.direct:alice", "1.0.0"), ("org.direct:bob", "2.0.0"), ("org.direct:chris", "3.0.0")},
    ),
    "maven/pom-plugin-dependency/pom.xml": (1, {("com.example:hijack-lib", "1.0.0")}),
    "maven/pom-profiles/pom.xml": (1, {("org.profile:profile-dep", "1.2.3")}),
    "maven/pom-with-parent/pom.xml": (
        5,
        {
            ("org.alice:alice", "1.0.0"),
            ("org.bob:bob", "2.0.0"),  # a property
            ("org.chuck:chuck", "3.0.0"),  # dependencyManagement
            ("org.dave:dave", "4.0.0"),  # inherited from the local parent
            ("org.frank:frank", N),  # managed nowhere locally
        },
    ),
    "maven/pom-with-parent/parent/pom.xml": (1, {("org.dave:dave", "4.0.0")}),
    "maven/osv-scanner-maven-transitive/pom.xml": (
        1,
        {("org.apache.logging.log4j:log4j-web", "2.14.1")},
    ),
    "maven/osv-scanner-maven-transitive/abc.xml": (
        1,
        {("org.apache.logging.log4j:log4j-web", "2.14.1")},
    ),
    "maven/osv-scanner-maven-transitive/registry.xml": (
        2,
        {("com.google.android.gms:play-services", "10.0.0")},  # from ./parent.xml
    ),
    "maven/osv-scanner-maven-transitive/parent.xml": (
        1,
        {("com.google.android.gms:play-services", "10.0.0")},
    ),
    "maven/osv-scanner-maven-transitive/encoding.xml": (1, {("junit:junit", "4.12")}),
    "maven/osv-scanner-fix-override-maven/pom.xml": (
        2,
        {
            ("org.apache.maven.wagon:wagon-http", "3.0.0"),
            ("org.codehaus.plexus:plexus-utils", "3.0"),
        },
    ),
    "maven/scalibr-zeppelin-server/pom.xml": (
        38,
        {
            ("org.apache.zeppelin:zeppelin-zengine", "0.11.1"),  # ${project.version} of the parent
            ("com.fasterxml.jackson.core:jackson-databind", "2.12.6.1"),
            ("org.apache.httpcomponents:httpclient", "4.5.13"),  # managed two parents up
            ("org.eclipse.jetty:jetty-webapp", "9.4.52.v20230823"),
        },
    ),
    "maven/scalibr-zeppelin-server/parent/pom.xml": (0, set()),  # management and plugins only
    "maven/scalibr-zeppelin-server/parent/parent/pom.xml": (0, set()),
    # --- Gradle
    "gradle/gradle-lockfile-5-pkg/gradle.lockfile": (
        5,
        {("org.springframework.boot:spring-boot-starter-data-jpa", "2.7.8")},
    ),
    "gradle/gradle-lockfile-one-pkg/gradle.lockfile": (
        1,
        {("org.springframework.security:spring-security-crypto", "5.7.3")},
    ),
    "gradle/buildscript-gradle-lockfile-one-pkg/buildscript-gradle.lockfile": (
        1,
        {("org.springframework.security:spring-security-crypto", "5.7.3")},
    ),
    **{
        f"gradle/verification-metadata-{case}/gradle/verification-metadata.xml": (
            count,
            {("org.apache.pdfbox:pdfbox", "2.0.17")} if count < 3 else set(),
        )
        for case, count in {
            "one-package": 1,
            "two-packages": 2,
            "duplicates": 1,  # the same component twice is one package
            "single-quotes": 1,
            "attribute-order": 1,
            "multi-line": 1,
            "multiple-versions": 18,
            "odd-versions": 28,
            "complex": 66,
        }.items()
    },
}

# Files upstream rejects whole: the error we give (file and line are always in it).
MALFORMED: dict[str, str] = {
    "npm/malformed/package-lock-not-json/package-lock.json": r": line 1: invalid JSON",
    "npm/malformed/package-lock-null/package-lock.json": r": line 1: not a package-lock\.json",
    "npm/malformed/pnpm-lock-invalid-paths/pnpm-lock.yaml": r": line 11: not a pnpm package path",
    "pypi/malformed/poetry-lock-not-toml/poetry.lock": r": line 1: invalid TOML",
    "pypi/malformed/pipfile-lock-no-version/Pipfile.lock": r": line 19: .*'markupsafe' has no ver",
    "packagist/malformed/composer-not-json/composer.lock": r": line 1: invalid JSON",
    "packagist/malformed/composer-null/composer.lock": r": line 1: not a composer\.lock object",
    "maven/malformed/pom-invalid-syntax/pom.xml": r": line 3: invalid XML",
    "maven/malformed/pom-not-pom/pom.xml": r": line 1: invalid XML",
    "gradle/malformed/verification-metadata-not-xml/gradle/verification-metadata.xml": (
        r": line 1: invalid XML"
    ),
}

# Partly malformed: the good entries come out, each bad one is reported with its line.
PARTLY: dict[str, tuple[set[tuple[str, str | None]], set[int]]] = {
    "gradle/malformed/gradle-lockfile-with-bad-pkg/gradle.lockfile": (
        {
            ("org.springframework.boot:spring-boot-autoconfigure", "2.7.4"),
            ("org.springframework.boot:spring-boot-configuration-processor", "2.7.5"),
        },
        {3, 4, 9, 10},  # ">>>", "////", "a", "b"; "empty=" is Gradle's own and not reported
    ),
    "gradle/malformed/verification-metadata-missing-attribute/gradle/verification-metadata.xml": (
        set(),
        {6, 12, 18},
    ),
    # Valid TOML: the `name = ` inside a string and a sub-table cannot fool a TOML reader,
    # so both packages come out (osv-scalibr's line reader errs; we read the file).
    "pypi/malformed/uv-names-outside-package-block/uv.lock": (
        {("first-pkg", "1.0.0"), ("second-pkg", "2.0.0")},
        set(),
    ),
}


def _manifest() -> list[str]:
    root = require_shared("datasets", "lockfiles")
    rows = (root / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [row.split("\t")[0] for row in rows if row.strip()]


def _parse(path: Path) -> list[Package]:
    # osv-scanner's test passes these poms under other names (-L pom.xml:abc.xml)
    renamed = path.suffix == ".xml" and path.parent.name == "osv-scanner-maven-transitive"
    return parse_pom(path) if renamed else parse(path)


def test_every_manifest_file_has_an_expectation() -> None:
    """All 97 files are covered: 84 valid, 10 rejected whole, 3 partly readable."""
    files = _manifest()
    assert sorted(files) == sorted([*VALID, *MALFORMED, *PARTLY])
    assert (len(VALID), len(MALFORMED) + len(PARTLY)) == (84, 13)


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_case(case: str) -> None:
    path = require_shared("datasets", "lockfiles", *case.split("/"))
    count, pairs = VALID[case]
    packages = _parse(path)
    assert len(packages) == count, [(p.name, p.version) for p in packages]
    assert pairs <= {(p.name, p.version) for p in packages}
    assert all(p.line is None or p.line >= 1 for p in packages)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_case(case: str) -> None:
    path = require_shared("datasets", "lockfiles", *case.split("/"))
    with pytest.raises(LockfileError) as caught:
        parse(path)
    assert str(caught.value).startswith(str(path))
    assert re.search(MALFORMED[case], str(caught.value)), str(caught.value)


@pytest.mark.parametrize("case", sorted(PARTLY))
def test_partly_malformed_case(case: str) -> None:
    path = require_shared("datasets", "lockfiles", *case.split("/"))
    good, bad_lines = PARTLY[case]
    packages = parse(path)
    assert {(p.name, p.version) for p in packages if p.version} == good
    assert {p.line for p in packages if p.version is None} == bad_lines
    assert all(p.note for p in packages if p.version is None)


def test_tree_scan_reports_unreadable_files_and_goes_on() -> None:
    """A scan of the whole tree reads every valid file and lists exactly the 10 bad ones."""
    root = require_shared("datasets", "lockfiles")
    packages, errors = scan_tree(root)
    assert sorted(e.split(": line")[0] for e in errors) == sorted(
        str(root / case) for case in MALFORMED
    )
    read = {p.source for p in packages}
    named = [c for c in VALID if Path(c).name in ("pom.xml",) or not c.endswith(".xml")]
    assert all(root / c in read or VALID[c][0] == 0 for c in named)


def test_flags_on_shared_cases() -> None:
    """dev, direct, scope and commit come from what each format says."""
    root = require_shared("datasets", "lockfiles")

    def one(case: str, name: str, version: str | None = None) -> Package:
        return next(
            p
            for p in _parse(root / case)
            if p.name == name and (version is None or p.version == version)
        )

    bundled = one("npm/package-lock-v3-bundled-dependencies/package-lock.json", "semver")
    assert (bundled.dev, bundled.direct, bundled.note) == (True, True, "bundled")
    pixel = "npm/package-lock-v2-commits/package-lock.json"
    assert one(pixel, "babel-preset-php").commit == "c5a7ba5e0ad98b8db1cb8ce105403dd4b768cced"
    v9 = one("npm/pnpm-v9-commits/pnpm-lock.yaml", "ansi-regex")
    assert v9.commit == "02fa893d619d3da85411acc8fd4e2eea0e95a9d9" and v9.direct
    assert one("npm/pnpm-v5-peer-dependencies-advanced/pnpm-lock.yaml", "eslint").direct
    assert one("pypi/poetry-multiple-packages-v2/poetry.lock", "faker").dev
    assert not one("pypi/poetry-multiple-packages-v2/poetry.lock", "redis").dev
    assert one("pypi/pipfile-lock-two-packages/Pipfile.lock", "markupsafe").dev
    assert one("pypi/pdm-dev-dependency/pdm.lock", "pyroute2").dev
    assert one("pypi/uv-source-git/uv.lock", "ruff").commit.startswith("84748be")
    black = one("pypi/uv-grouped-packages/uv.lock", "black")
    assert black.scope == "dev,test" and not black.dev  # extras named dev/test, not dev groups
    assert one("pypi/pylock-commits/pylock.toml", "mleroc").commit.startswith("735093f")
    assert one("packagist/composer-one-package-dev/composer.lock", "sentry/sdk").dev
    junit = one("maven/pom-with-scope/pom.xml", "junit:junit")
    assert (junit.scope, junit.dev, junit.direct) == ("test", True, True)
    assert one("maven/pom-plugin-dependency/pom.xml", "com.example:hijack-lib").line == 27
    zeppelin = "maven/scalibr-zeppelin-server/pom.xml"
    assert one(zeppelin, "org.apache.hadoop:hadoop-client-runtime").scope == "provided"
    assert (
        one(
            "gradle/verification-metadata-multi-line/gradle/verification-metadata.xml",
            "org.apache.pdfbox:pdfbox",
        ).line
        == 5
    )
    spring = one(
        "gradle/gradle-lockfile-5-pkg/gradle.lockfile",
        "org.springframework.boot:spring-boot-devtools",
    )
    assert spring.scope == "developmentOnly,runtimeClasspath" and spring.line == 7
