"""One settings object, read from the environment once by the application.

Every field maps to ``PYNOMALY_SECURITY__<FIELD NAME IN UPPER CASE>``; nested
values use ``__`` again (``PYNOMALY_SECURITY__DETECTION_MODE_OVERRIDES__SQLI``).
The master key is the one exception: it is ``PYNOMALY_MASTER_KEY``.

Where a group of fields reads better as one object, it is a section model
(:data:`SECTIONS`: ``settings.inspection.max_fields``) whose names stay flat:
``inspection_max_fields=`` as a keyword argument and
``PYNOMALY_SECURITY__INSPECTION_MAX_FIELDS`` in the environment, as before.

A JSON file named by ``PYNOMALY_SECURITY_CONFIG`` may hold the same settings
(``_config_file.py``); the environment and ``.env`` win over it.

Components receive this object (or the values they need) from the plugin; no
module here reads the environment on its own, and there is no module-level
instance. ``.env.example`` at the repository root lists every variable.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pynomaly_security._config_file import CONFIG_ENV, JsonConfigFile
from pynomaly_security.auth.usernames import DEFAULT_RESERVED
from pynomaly_security.detection.policy import DEFAULT_CREDENTIAL_FIELDS
from pynomaly_security.exceptions import ConfigurationError
from pynomaly_security.network.hosts import DEFAULT_ALLOWED_HOSTS
from pynomaly_security.tenancy.settings import TenancySection

__all__ = [
    "ENV_PREFIX",
    "SECTIONS",
    "AnomalySection",
    "ComplianceSection",
    "InspectionSection",
    "MetricsSection",
    "SanitizationLevel",
    "SecuritySettings",
    "VulnsSection",
    "load_settings",
]

ENV_PREFIX = "PYNOMALY_SECURITY__"
MASTER_KEY_ENV = "PYNOMALY_MASTER_KEY"


class SanitizationLevel(StrEnum):
    STRICT = "strict"
    MODERATE = "moderate"
    PERMISSIVE = "permissive"


def _split_list(value: Any) -> Any:
    """Accept a JSON list or a comma-separated string for list settings."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


StrList = Annotated[list[str], NoDecode]
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class InspectionSection(BaseModel):
    """Every bound of one request's inspection; each fails closed (issue 12).

    A section of :class:`SecuritySettings` (``settings.inspection.max_fields``) whose
    names stay flat: ``inspection_max_fields=`` as a keyword argument,
    ``PYNOMALY_SECURITY__INSPECTION_MAX_FIELDS`` in the environment.
    """

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    max_fields: int = Field(default=10_000, ge=1)
    """Values inspected per request (query pairs, cookies, form fields, JSON strings
    and keys); a request with more is refused 413 ``too_many_fields``."""
    max_json_depth: int = Field(default=64, ge=1)
    """Nesting of a JSON body; deeper is refused 400 ``json_too_deep``."""
    max_headers: int = Field(default=100, ge=1)
    """Header lines of a request; more is refused 431 ``too_many_headers``."""
    max_header_bytes: int = Field(default=65_536, ge=1)
    """Bytes of the inspected header values of a request together (cookies,
    ``User-Agent``, ``Referer``, ``X-*``...); more is refused 431
    ``headers_too_large`` before any is scanned (nginx reads 4 x 8 KiB of headers
    by default, Node.js 16 KiB, h11 16 KiB; uvicorn's httptools reads any size)."""
    max_json_elements: int = Field(default=20_000, ge=1)
    """Elements of a JSON body (array items, object members, containers), counted
    before it is parsed; more is refused 413 ``json_too_many_elements``."""
    max_parts: int = Field(default=2_000, ge=1)
    """Parts of a multipart body (Starlette's own limits: 1,000 fields and 1,000
    files); more is refused 413 ``too_many_parts``."""
    budget_ms: float = Field(default=50.0, gt=0)
    """CPU milliseconds inspection may spend on one request; past it the request is
    refused 413 ``inspection_budget_exceeded`` (no request stalls the event loop
    longer)."""


class VulnsSection(BaseModel):
    """The dependency vulnerability assessment (issue 18): ``settings.vulns.db_path``,
    ``PYNOMALY_SECURITY__VULNS_DB_PATH`` in the environment."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    db_path: str = "./pynomaly_vulns.db"
    """The advisory database (SQLite), built by ``python -m pynomaly_security vulndb
    import`` or ``refresh``."""
    osv_url: str = "https://osv-vuln-data.storage.googleapis.com"
    """Where ``vulndb refresh`` downloads ``<ECOSYSTEM>/all.zip`` exports from."""
    osv_ecosystems: StrList = Field(default_factory=lambda: ["PyPI", "npm", "Packagist", "Maven"])
    """The OSV ecosystems ``vulndb refresh`` downloads."""
    deadline_days: dict[str, int] = Field(
        default_factory=lambda: {"critical": 7, "high": 30, "medium": 90, "low": 180}
    )
    """Days to remediate a vulnerable dependency, by severity (a CISA KEV due date wins)."""
    check_on_startup: bool = True
    """Check the app's own installed and imported dependencies in the background at
    start-up (never delaying it); an imported vulnerable package raises a monitor alert."""

    @field_validator("osv_ecosystems", mode="before")
    @classmethod
    def _ecosystems(cls, value: Any) -> Any:
        return _split_list(value)


class ComplianceSection(BaseModel):
    """The compliance validator (issue 19): ``PYNOMALY_SECURITY__COMPLIANCE_<NAME>``."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    enabled: bool = True
    """Run the compliance checks at start-up and on a schedule (``stack.compliance``,
    ``/api/security/compliance/status``); off: nothing runs and nothing is mounted."""
    interval_seconds: float = Field(default=3600.0, ge=60.0)
    """Every how many seconds every check runs (probes through the app, the audit chain's
    verification, the users' MFA); also once at start-up."""
    cheap_interval_seconds: float = Field(default=60.0, ge=1.0)
    """Every how many seconds the cheap checks run (settings, checkpoint age, keys,
    incidents past their deadline)."""
    catalogue_file: str | None = None
    """A YAML file of the application's own checks and controls, merged into the shipped
    catalogue (thresholds may be tightened, never loosened)."""
    waivers_file: str | None = None
    """A YAML file of waivers (check or control, justification, owner, expiry); a
    malformed one stops start-up."""
    keep_runs: int = Field(default=2000, ge=10, le=1_000_000)
    """Runs kept with their full evidence in the state backend (the newest)."""
    history_entries: int = Field(default=20_000, ge=100, le=10_000_000)
    """Status samples kept per check for period reports (a sample per change, and at
    least one an hour: 20,000 is over two years)."""
    check_timeout_seconds: float = Field(default=60.0, gt=0)
    """Longest a check may take; past it the check's result is ``error``."""
class AnomalySection(BaseModel):
    """Behavioural anomaly detection (issue 22; ``pynomaly_security/anomaly/``).

    A section of :class:`SecuritySettings` (``settings.anomaly.mode``) with flat names:
    ``PYNOMALY_SECURITY__ANOMALY_MODE`` and so on.
    """

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    mode: Literal["off", "learn", "detect", "prevent"] = "off"
    """off: nothing on the request path; learn: build the per-endpoint profiles from
    served traffic (shared through STATE_URL, else REDIS_URL); detect: alert on
    requests scoring at or below ALERT_SCORE; prevent: also refuse (403
    ``anomalous_request``) those at or below BLOCK_SCORE."""
    model_path: str | None = None
    """A model directory written by ``python -m pynomaly_security anomaly train``; the
    only place a model is loaded from (checked: version and SHA-256 digests)."""
    routes: StrList = Field(default_factory=list)
    """Path prefixes observed (comma-separated); empty: every path."""
    exclude: StrList = Field(
        default_factory=lambda: ["/api/security", "/health", "/healthz", "/docs", "/redoc",
                                 "/openapi.json", "/static"]
    )
    """Path prefixes never observed."""
    alert_score: int = Field(default=30, ge=1, le=99)
    """Detect and prevent: a request scoring at or below this raises an alert (1-99,
    low: likely an attack)."""
    block_score: int = Field(default=10, ge=1, le=99)
    """Prevent: a request scoring at or below this is refused. The operator's
    confidence: 10 means about 9 digits of surprisal."""
    min_requests: int = Field(default=50, ge=1)
    """Learned requests of an endpoint before it is judged."""
    batch_size: int = Field(default=256, ge=1)
    """Requests scored together in the monitor's task."""
    queue_size: int = Field(default=10_000, ge=1)
    """Requests waiting for the monitor's task; the oldest is dropped beyond it."""
    flush_seconds: float = Field(default=5.0, gt=0)
    """How often a learning worker adds its counts to the shared profile."""
    max_endpoints: int = Field(default=2_000, ge=1)
    """Endpoints a profile keeps (more are counted as "other")."""
    max_body_bytes: int = Field(default=65_536, ge=0)
    """Form and JSON bodies up to this size are read into the features; larger ones
    count by their length only."""

    @field_validator("routes", "exclude", mode="before")
    @classmethod
    def _prefixes(cls, value: Any) -> Any:
        return _split_list(value)

    @model_validator(mode="after")
    def _scores(self) -> AnomalySection:
        if self.block_score > self.alert_score:
            raise ValueError("block_score must not exceed alert_score")
        return self


class MetricsSection(BaseModel):
    """Prometheus metrics, the JSON summary and the dashboard page (issue 20).

    Flat names like the inspection section's: ``metrics_enabled=`` as a keyword
    argument, ``PYNOMALY_SECURITY__METRICS_ENABLED`` in the environment.
    """

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    enabled: bool = True
    """Count requests, blocks and alerts per worker and serve ``GET /metrics``, the
    summary and the dashboard; off, nothing of it is in the request path."""
    path: str = Field(default="/metrics", pattern=r"^/[A-Za-z0-9._/-]{0,127}$")
    """Where the Prometheus exposition is served (with ``add_security_endpoints``)."""
    token: SecretStr | None = None
    """A token a scraper presents (``Authorization: Bearer``) instead of the admin key;
    at least 16 characters. The admin key is always accepted too."""
    flush_seconds: float = Field(default=1.0, gt=0, le=60)
    """How often each worker adds its counts to the shared state (the scrape of one
    worker sees another's counts at most this late)."""
    latency_sample: int = Field(default=64, ge=1, le=65536)
    """One request in this many has its duration put in the latency histogram (a power
    of two; the low bits of its nanosecond duration choose it)."""
    alert_thresholds: StrList = Field(default_factory=list)
    """Alert rules on metrics, ``<series><op><number>`` (``blocked_per_minute>100``,
    ``failed_logins_per_minute>20``, ``audit_verification_failed>0``,
    ``dropped_per_minute>0``); see the README's metrics section."""

    @field_validator("latency_sample")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("must be a power of two")
        return value

    @field_validator("token")
    @classmethod
    def _token_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("alert_thresholds", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value


SECTIONS: dict[str, type[BaseModel]] = {
    "inspection": InspectionSection,
    "vulns": VulnsSection,
    "compliance": ComplianceSection,
    "anomaly": AnomalySection,
    "metrics": MetricsSection,
    # Issue 21: the tenancy section lives with its package (tenancy/settings.py).
    "tenancy": TenancySection,
}
"""Section field -> its model. A section's fields keep flat names: ``<section>_<field>``
as keyword arguments and ``PYNOMALY_SECURITY__<SECTION>_<FIELD>`` in the environment."""


def _flat_name(section: str, name: str) -> str:
    return f"{section}_{name}"


class _FlatSectionNames(PydanticBaseSettingsSource):
    """Hands a section's flat environment names (``..._INSPECTION_MAX_FIELDS``) from the
    environment and the ``.env`` file to the settings: the sources of pydantic-settings
    read only the names of fields, and a section is one field."""

    def __init__(self, settings_cls: type[BaseSettings], *sources: object) -> None:
        super().__init__(settings_cls)
        self._sources = sources

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the sources' variables

    def __call__(self) -> dict[str, Any]:
        # Flat keys, like the keyword arguments: pydantic-settings merges them by the
        # sources' priority (keyword arguments, then this, then the .env file's).
        found: dict[str, Any] = {}
        for source in self._sources:  # the first has priority, as in pydantic-settings
            variables: Mapping[str, str | None] = getattr(source, "env_vars", {})
            for section, model in SECTIONS.items():
                for name in model.model_fields:
                    flat = _flat_name(section, name)
                    value = variables.get((ENV_PREFIX + flat).lower())
                    if value is not None:
                        found.setdefault(flat, value)
        return found


class SecuritySettings(BaseSettings):
    """All settings of the plugin.

    Build it once in the application (``SecuritySettings()`` reads the
    environment; keyword arguments override it, which is what tests do) and
    pass it to :func:`pynomaly_security.setup_security_middleware`.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
        use_attribute_docstrings=True,
    )

    # -- general -----------------------------------------------------------------
    development_mode: bool = False
    """Relaxes checks meant for production (e.g. a missing master key only warns)."""

    # -- input inspection (issue 2, 3) ------------------------------------------------
    sanitization_level: SanitizationLevel = SanitizationLevel.MODERATE
    """How much markup InputSanitizer keeps when ALLOW_HTML is on: strict, moderate or
    permissive (with ALLOW_HTML off, the default, every level keeps text only)."""
    max_input_length: int = Field(default=1_048_576, ge=1)
    """Largest request body (bytes) the inspection middleware buffers (more is 413
    ``request_too_large``), and longest single value (413 ``value_too_long``)."""
    allow_html: bool = False
    """Whether InputSanitizer keeps the level's allowed tags (false: text only)."""
    detection_level: int = Field(default=2, ge=1, le=4)
    """1 lenient .. 4 paranoid: the anomaly score threshold to block."""
    detection_mode: Literal["block", "detect"] = "block"
    """block: answer 403 and stop the request; detect: let it pass and report it."""
    detection_mode_overrides: dict[str, Literal["block", "detect"]] = Field(default_factory=dict)
    """Per-family mode, e.g. ``{"xss": "detect"}``."""
    sql_injection_protection: bool = True
    """Check each SQL statement at the database driver against the current request's
    values (issue 15): SQLAlchemy engines are hooked by setup_security_middleware,
    sqlite3/asyncpg/psycopg connections by the app (see the README)."""
    sql_injection_mode: Literal["block", "detect"] = "block"
    """block: a statement a request value changes the structure of never runs and the
    request is answered 403; detect: it runs, and is reported and audited."""
    sql_injection_min_length: int = Field(default=2, ge=1)
    """Request values shorter than this are not looked for in statements."""
    sqli_edge_mode: Literal["auto", "block", "detect"] = "auto"
    """What SQL injection findings do at the inspection layer. auto: when the SQL sink
    blocks (SQL_INJECTION_PROTECTION on, SQL_INJECTION_MODE=block) a request whose only
    blocking findings are SQL injection passes, reported as sink-confirmed, and the
    sink blocks it if a value reaches a statement; otherwise as block. block: 403 at
    the edge. detect: only reported. Other families, and a request with another
    family's finding too, are blocked at the edge whatever this says."""
    detection_exclusions: dict[str, StrList] = Field(default_factory=dict)
    """Route path (exact or prefix ending in ``*``) -> field names not scanned,
    e.g. ``{"/cms/pages": ["body.content"]}``; ``["*"]`` exempts the route."""
    inspect_headers: StrList = Field(default_factory=lambda: ["*"])
    """Request headers whose values are inspected: names, prefixes (``x-*``), or ``*``
    for every header an app may read with ``Header()`` (all but framing, connection
    and trace-context headers); ``Authorization`` never."""
    credential_fields: StrList = Field(default_factory=lambda: list(DEFAULT_CREDENTIAL_FIELDS))
    """Keys of fields holding credentials (passwords, one-time codes, tokens), matched
    in any case and with ``_``/``-`` ignored (``newPassword``): such a body field (JSON,
    form, multipart) is not inspected, and no finding quotes one; empty: none."""

    # -- inspection limits and body reading (issue 12: fail closed) -----------------------
    inspection: InspectionSection = Field(default_factory=lambda: InspectionSection())
    """Limits of one request's inspection: ``PYNOMALY_SECURITY__INSPECTION_<NAME>``."""
    vulns: VulnsSection = Field(default_factory=lambda: VulnsSection())
    """Dependency vulnerability assessment: ``PYNOMALY_SECURITY__VULNS_<NAME>``."""
    compliance: ComplianceSection = Field(default_factory=lambda: ComplianceSection())
    """The compliance validator: ``PYNOMALY_SECURITY__COMPLIANCE_<NAME>``."""
    anomaly: AnomalySection = Field(default_factory=lambda: AnomalySection())
    """Behavioural anomaly detection: ``PYNOMALY_SECURITY__ANOMALY_<NAME>`` (issue 22)."""
    metrics: MetricsSection = Field(default_factory=lambda: MetricsSection())
    """Prometheus metrics and the dashboard (``METRICS_*``; see :class:`MetricsSection`)."""
    tenancy: TenancySection = Field(default_factory=lambda: TenancySection())
    """Secure multi-tenancy (issue 21), off by default: ``PYNOMALY_SECURITY__TENANCY_<NAME>``."""
    body_read_timeout: float = Field(default=30.0, gt=0)
    """Seconds a client has to send a body that one of our layers reads (the inspection
    middleware; on login paths the tracking layer and the login guard, for the user
    name); a slower one is answered 408 ``body_read_timeout`` and audited."""

    # -- encryption / keys (issue 6) -----------------------------------------------------
    encryption_algorithm: Literal["fernet", "aes_gcm"] = "fernet"
    """Cipher of DataEncryption: fernet or aes_gcm (binds ciphertext to its context);
    aes_cbc is refused (CBC without a MAC is malleable)."""
    encryption_key_length: int = 32
    """Bytes of each derived data key: 32, the length both offered algorithms take
    (AES-256-GCM; Fernet's 16-byte AES key plus its 16-byte HMAC key)."""
    enable_key_rotation: bool = True
    """Keep a key ring so keys can rotate while old data still decrypts."""
    key_rotation_days: int = Field(default=90, ge=1)
    """Age in days after which the newest data key should be rotated."""
    master_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices(MASTER_KEY_ENV, "master_key")
    )
    """Base64 of 32 random bytes; every purpose key derives from it (HKDF).
    Generate one with ``python -m pynomaly_security keys generate``."""
    retired_master_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """Earlier master keys (comma-separated), still accepted for reading after
    ``PYNOMALY_MASTER_KEY`` was replaced: audit history, encrypted fields, vault
    entries and TOTP secrets written under them stay readable (``keys rotate``
    rewrites fields and vault entries under the new key)."""

    # -- audit (issue 2, 4) ------------------------------------------------------------------
    enable_audit_logging: bool = True
    """Record one audit entry per request and every security event."""
    enable_compliance_logging: bool = True  # the guide says false: see the README
    """Tag audit entries with the compliance controls they evidence and forward them."""
    audit_retention_days: int = Field(default=2555, ge=1)
    """Audit entries older than this are pruned (whole signed segments only)."""
    audit_db_url: str = "sqlite:///./pynomaly_audit.db"
    """Audit store: sqlite:///path or postgresql://user@host/db."""
    audit_flush_interval_ms: int = Field(default=200, ge=1, le=200)
    """Longest time a per-request access record waits before it is written."""
    audit_log_line: bool = False
    """Also emit one canonical structlog line per request (event ``http_request``).
    Off by default: the audit record is the per-request record, uvicorn already
    logs access, and the line costs ~7 µs per request."""
    audit_checkpoint_every: int = Field(default=1000, ge=1)
    """Anchor a checkpoint of the audit chain (every commit is signed; security events
    are anchored at once) after this many access records..."""
    audit_checkpoint_seconds: float = Field(default=60.0, gt=0)
    """...or every this many seconds, whichever comes first."""

    # -- audit anchors and record bounds (issue 12, item 11) --------------------------------
    audit_anchor_file_enabled: bool = True
    """Append every anchored checkpoint to a JSON Lines file outside the database
    (``audit verify --anchor FILE`` checks the store against it)."""
    audit_anchor_file: str | None = None
    """The anchor file; default: next to a SQLite database (``<db>.anchors.jsonl``).
    With PostgreSQL set it (or another sink), else there is no file anchor."""
    audit_anchor_syslog: str | None = None
    """Also send each anchored checkpoint to syslog: ``host:port`` (UDP) or a socket path."""
    audit_anchor_redis_url: str | None = None
    """Also ``RPUSH`` each anchored checkpoint to a Redis list (best on another server)."""
    audit_anchor_redis_key: str = "pynomaly:audit:anchors"
    """The Redis list of ``audit_anchor_redis_url``."""
    audit_anchor_webhook_url: str | None = None
    """Also ``POST`` each anchored checkpoint (JSON) to this URL."""
    audit_max_field_chars: int = Field(default=1024, ge=64, le=65536)
    """Longest text an audit record keeps of one user-controlled field (path, user
    agent, query, detail); longer text is cut and marked ``…[+N chars]``."""
    audit_max_record_bytes: int = Field(default=16384, ge=1024, le=1_048_576)
    """Largest JSON body of one security or audit record; beyond it, details are
    replaced by a summary (their names and sizes)."""

    # -- monitoring (issue 2) -------------------------------------------------------------
    enable_security_monitoring: bool = True
    """Run the SecurityMonitor (detectors, alerts)."""
    threat_detection_enabled: bool = True
    """Inspect requests for injection attacks and run the threat detectors."""
    brute_force_max_attempts: int = Field(default=5, ge=1)
    """Failed logins (per IP or per user) within the window that trip brute-force."""
    brute_force_time_window: int = Field(default=300, ge=1)
    """The brute-force window in seconds; a tripped IP gets 429 on login for as long."""
    login_paths: StrList = Field(
        default_factory=lambda: ["/login", "/auth/login", "/api/login", "/token"]
    )
    """POST routes treated as logins: 401/403 answers count as failed logins."""
    monitor_queue_size: int = Field(default=10_000, ge=1)
    """Bound of the monitor's event queue; events beyond it are dropped and counted."""
    max_tracked_keys: int = Field(default=100_000, ge=1)
    """Bound of every per-key map kept in memory (IPs, users, counters)."""
    anomaly_min_history: int = Field(default=10, ge=1)
    """Requests of a user seen before a new IP address raises an ``anomalous_access``
    alert (medium); changeable live."""
    anomaly_hour_min_history: int = Field(default=50, ge=1)
    """Requests of a user seen before activity at a new hour (UTC) raises one (low);
    changeable live."""
    correlation_enabled: bool = True
    """Run the correlation rules over the monitor's events (``monitor/correlation/``)."""
    correlation_builtin_rules: bool = True
    """Run the built-in rules (brute force, credential stuffing, password spraying,
    injection campaigns, scanner sweeps, token reuse)."""
    correlation_disabled_rules: StrList = Field(default_factory=list)
    """Ids of built-in rules not to run (comma-separated)."""
    correlation_rules_file: str | None = None
    """A YAML file of correlation rules, validated at start-up; a rule with a built-in
    rule's id replaces it."""
    decisions_enabled: bool = True
    """Enforce decisions (ban, throttle, read-only, MFA step-up, raised detection) on
    requests (``decisions/``; ``/api/security/decisions``, ``intel import``)."""
    decision_max: int = Field(default=10_000, ge=1, le=1_000_000)
    """Most decisions kept; a new one beyond is refused (expired ones are dropped first)."""
    decision_default_ttl: float = Field(default=3600.0, gt=0)
    """Seconds a decision lasts when its maker gives no duration (the first offence)."""
    decision_escalation_window: float = Field(default=86_400.0, gt=0)
    """Seconds in which a new decision on the same value counts as a repeat: each
    repeat doubles the duration."""
    decision_max_ttl: float = Field(default=30 * 86_400.0, gt=0)
    """Longest duration an escalated decision gets."""
    decision_grace_period: float = Field(default=600.0, ge=0)
    """Seconds after a manual revert in which no automatic decision is made on that value."""
    decision_allow_networks: StrList = Field(default_factory=list)
    """CIDRs never refused by a decision (admin networks), and never the target of one."""
    decision_allow_paths: StrList = Field(default_factory=lambda: ["/health", "/healthz"])
    """Paths no decision applies to (health checks)."""
    decision_throttle_per_minute: int = Field(default=30, ge=1)
    """Requests per minute a ``throttle`` decision lets through, per value (all workers)."""
    decision_poll_seconds: float = Field(default=0.5, gt=0)
    """How often a worker reads the decisions' version (a change reaches every worker
    within about this)."""
    playbooks_file: str | None = None
    """A YAML file of playbooks (``playbooks:`` list), validated at start-up; one with a
    built-in playbook's name replaces it (``incidents/playbooks.py``)."""
    correlation_responses: dict[str, str] = Field(default_factory=dict)
    """Per correlation rule id, whether its match runs the rule's playbook: ``off``,
    ``dry_run`` (plan only, on the incident's timeline) or ``on``; a rule not named
    keeps its own (``dry_run`` for the built-in rules). JSON, e.g.
    ``{"brute_force_success": "on"}``."""
    playbook_verify_path: str = Field(default="/", pattern=r"^/[^\s?#]{0,255}$")
    """The path a playbook's ``verify`` requests, in process, as the banned address (it
    must answer 403): one no allow-list exempts (``DECISION_ALLOW_PATHS``)."""
    playbook_webhook_url: SecretStr | None = None
    """Where a playbook's ``notify`` (channel ``webhook``) POSTs its JSON message."""
    playbook_slack_webhook_url: SecretStr | None = None
    """A Slack-compatible incoming webhook (``{"text": ...}``) for channel ``slack``."""
    playbook_ticket_webhook_url: SecretStr | None = None
    """Where ``open_ticket`` POSTs a ticket (title, description, severity, incident id)."""
    playbook_smtp_url: SecretStr | None = None
    """``smtp://[user:password@]host:port`` (or ``smtps://``) for channel ``email``."""
    playbook_email_from: str = "pynomaly-security@localhost"
    """The sender of playbook e-mail."""
    playbook_email_to: StrList = Field(default_factory=list)
    """Recipients of playbook e-mail (comma-separated)."""
    policies_enabled: bool = True
    """The security policy engine (``policy/``; ``stack.policies``,
    ``/api/security/policies``); nothing is enforced until a policy is activated and a
    route asks (``Depends(require("orders:read"))``)."""
    policy_poll_seconds: float = Field(default=0.5, gt=0)
    """How often a worker reads the policies' change counter (an activation reaches
    every worker within about this)."""
    policy_max_versions: int = Field(default=10_000, ge=10, le=1_000_000)
    """Most policy versions kept over all policies (the oldest are dropped beyond)."""
    policy_decision_log: int = Field(default=10_000, ge=0, le=1_000_000)
    """Recent decisions each worker keeps for ``replay`` (0: none)."""

    # -- headers (issue 2) ------------------------------------------------------------------
    security_headers_enabled: bool = True
    """Add the security response headers."""
    csp_enabled: bool = True
    """Add a Content-Security-Policy (strict for APIs, hash-based for /docs)."""
    hsts_enabled: bool = True
    """Add Strict-Transport-Security to responses to HTTPS requests (directly, or
    ``X-Forwarded-Proto: https`` from a trusted proxy); never over plain HTTP
    (RFC 6797) and never in development mode."""
    hsts_max_age: int = Field(default=31_536_000, ge=0)
    """HSTS max-age in seconds."""

    # -- client identity / admin (issue 2, 5) ----------------------------------------------
    trusted_proxies: StrList = Field(default_factory=list)
    """CIDRs whose ``X-Forwarded-For`` / ``Forwarded`` headers are believed."""
    trusted_proxy_hops: int = Field(default=0, ge=0)
    """Alternatively, how many proxies stand in front of the app (0: none trusted)."""
    admin_api_key: SecretStr | None = None
    """Key for /api/security/* (X-API-Key or Bearer); at least 16 characters."""
    api_key_headers: StrList = Field(default_factory=list)
    """The app's own request headers that carry an API key or another credential,
    besides ``Authorization``, ``Proxy-Authorization``, ``Cookie`` and ``X-API-Key``
    (always counted): a request carrying one is never remembered by the tracking
    layer's memory of plain requests, which would keep the secret."""

    # -- shared state (issue 5) ---------------------------------------------------------------
    redis_url: str | None = None
    """redis://host:port/db for state shared by workers (counters, lockouts, alerts)."""
    state_url: str | None = None
    """Where the monitor's alerts (with acknowledgement), user activity and counters live:
    memory://, sqlite:///path (durable, one host), redis://... or postgresql://...
    (shared by every worker and host); default: the store of REDIS_URL (memory without)."""

    # -- authentication and abuse control (issue 5) --
    lockout_by: Literal["user", "ip", "user_and_ip"] = "user_and_ip"
    """What a lock applies to (django-axes' lockout parameters): the account, the
    client IP, or the pair (the default: an attacker cannot lock a victim out
    from everywhere, and one IP cannot spray one account)."""
    lockout_duration: int = Field(default=900, ge=1)
    """Seconds of the first lock; progressive locks double it per repeat."""
    lockout_progressive: bool = True
    lockout_max_duration: int = Field(default=86_400, ge=1)
    credential_stuffing_threshold: int = Field(default=10, ge=2)
    """Distinct users failing from one IP (or IPs failing for one user) within
    ``brute_force_time_window`` that raise a credential-stuffing alert."""
    jwt_algorithm: Literal["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"] = "HS256"
    jwt_secret: SecretStr | None = None
    """HMAC key for HS*; at least 32 bytes. Derived from the master key when unset."""
    jwt_private_key: SecretStr | None = None
    """PEM private key for RS256/ES256/EdDSA."""
    jwt_public_key: str | None = None
    jwt_issuer: str = "pynomaly-security"
    jwt_audience: str = "pynomaly-app"
    access_token_ttl: int = Field(default=900, ge=1)
    refresh_token_ttl: int = Field(default=1_209_600, ge=1)
    totp_issuer: str = "pynomaly-security"
    totp_recovery_codes: int = Field(default=10, ge=1, le=50)
    # -- sessions and second factors (issue 12) --------------------------------------
    reauth_max_age: int = Field(default=300, ge=1, le=3600)
    """Seconds after ``POST /reauth`` (password, plus a TOTP or recovery code once
    MFA is enrolled) during which that session may change a credential: enrol,
    confirm or disable a second factor, new recovery codes, a new password."""
    risk_medium_threshold: int = Field(default=30, ge=1)
    risk_high_threshold: int = Field(default=70, ge=1)
    geoip_db_path: str | None = None
    """MaxMind ``.mmdb`` (City) file; enables impossible-travel scoring (extra ``geoip``)."""
    rate_limit_enabled: bool = True
    rate_limits: StrList = Field(default_factory=list)
    """Limits (``limits`` notation, e.g. ``["100/minute"]``) applied to every request.
    Empty by default: a global per-IP limit throttles every client together behind a
    proxy that is not in TRUSTED_PROXIES; logins are protected by the lockout anyway."""
    route_rate_limits: dict[str, StrList] = Field(default_factory=dict)
    """Route path (exact or prefix ending in ``*``) -> limits replacing the default,
    e.g. ``{"/login": ["5/minute"]}``."""
    rate_limit_key: Literal["ip", "user", "api_key", "route"] = "ip"
    rate_limit_exempt_paths: StrList = Field(default_factory=list)
    store_failure_policy: dict[str, Literal["fail_open", "fail_closed"]] = Field(
        default_factory=dict
    )
    """Per feature (``rate_limit``, ``lockout``, ``tokens``, ``totp``, ``risk``) what
    to do when the shared store is down; unnamed features use their safe default."""

    # -- login, signup and guessing (issue 12: items 8, 9, 10) --
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    """Argon2 hashes running at once, in threads off the event loop (each holds
    64 MiB while it runs)."""
    password_hash_queue: int = Field(default=16, ge=0)
    """Hashes that may wait for a thread; a login or sign-up beyond them gets 503
    with Retry-After at once."""
    password_hash_wait: float = Field(default=2.0, gt=0)
    """Seconds a hash may wait for a thread before it is refused (503) unrun."""
    account_max_attempts: int = Field(default=20, ge=1)
    """Failed sign-ins (password or second factor) per account, from any address,
    within ``account_lockout_window``; beyond them the account's sign-ins get 429
    and a ``distributed_guessing`` alert is raised."""
    account_lockout_window: int = Field(default=900, ge=1)
    """Seconds the per-account failures are counted over."""
    login_username_fields: StrList = Field(
        default_factory=lambda: ["username", "email", "login", "user"]
    )
    """Body fields (JSON, form or multipart) a login route's user name may be in;
    an attempt reserves a guess for each one present."""
    auth_rate_limits_enabled: bool = True
    """Rate-limit login, sign-up and MFA routes (the limits below); on by default."""
    login_rate_limits: StrList = Field(default_factory=lambda: ["30/minute", "300/hour"])
    """Login attempts per client IP, on ``LOGIN_PATHS``."""
    login_account_rate_limits: StrList = Field(default_factory=lambda: ["30/minute", "60/hour"])
    """Login attempts per account name, from all addresses together (attempts the
    lockout refused are not counted)."""
    login_account_ip_rate_limits: StrList = Field(default_factory=lambda: ["10/minute", "30/hour"])
    """Login attempts per account name from one address: its share of
    ``LOGIN_ACCOUNT_RATE_LIMITS``, lower so that one address cannot spend an account's
    whole budget (attempts refused here do not count against the account)."""
    signup_paths: StrList = Field(
        default_factory=lambda: ["/signup", "/auth/signup", "/api/signup", "/register"]
    )
    """POST routes that create accounts (rate-limited per IP)."""
    signup_rate_limits: StrList = Field(default_factory=lambda: ["5/minute", "20/hour"])
    """Sign-ups per client IP."""
    mfa_paths: StrList = Field(
        default_factory=lambda: [
            *("/mfa/*", "/auth/mfa/*", "/api/mfa/*"),
            *("/reauth", "/auth/reauth", "/password", "/auth/password"),
        ]
    )
    """MFA and credential routes (exact, or prefix ending in ``*``): re-authentication
    and password changes guess a password or a code too; rate-limited per IP and per user."""
    mfa_rate_limits: StrList = Field(default_factory=lambda: ["20/minute"])
    """MFA requests (enrolment, confirmation codes) per client IP."""
    mfa_account_rate_limits: StrList = Field(default_factory=lambda: ["5/minute", "30/hour"])
    """MFA requests per signed-in user, from any address (bounds TOTP guessing
    on ``/mfa/confirm``)."""
    reserved_usernames: StrList = Field(default_factory=lambda: list(DEFAULT_RESERVED))
    """Names sign-up refuses, and any name confusable with one (TR39 skeletons)."""

    @field_validator(
        "login_username_fields", "login_rate_limits", "login_account_rate_limits",
        "login_account_ip_rate_limits", "signup_paths", "signup_rate_limits", "mfa_paths",
        "mfa_rate_limits", "mfa_account_rate_limits", "reserved_usernames", mode="before",
    )  # fmt: skip
    @classmethod
    def _issue12_login_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator(
        "correlation_disabled_rules", "decision_allow_networks", "decision_allow_paths",
        "playbook_email_to", mode="before",
    )  # fmt: skip
    @classmethod
    def _issue16_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("correlation_responses")
    @classmethod
    def _responses(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {k: v for k, v in value.items() if v not in ("off", "dry_run", "on")}
        if bad:
            raise ValueError(f"CORRELATION_RESPONSES: each value is off, dry_run or on: {bad}")
        return value

    @field_validator("retired_master_keys", mode="before")
    @classmethod
    def _retired_keys(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("rate_limits", "rate_limit_exempt_paths", mode="before")
    @classmethod
    def _issue5_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("route_rate_limits", mode="before")
    @classmethod
    def _issue5_route_limits(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if isinstance(value, dict):
            return {k: _split_list(v) for k, v in value.items()}
        return value

    @field_validator("rate_limits", "route_rate_limits")
    @classmethod
    def _limit_specs(cls, value: Any) -> Any:
        # Parsed here, as the rate limiter will: a typo fails at start-up (or is a
        # 422 for a live change) naming the setting, not a 500 on a request.
        from limits import parse_many

        for spec in value.values() if isinstance(value, dict) else [value]:
            for item in spec:
                try:
                    parse_many(item)
                except ValueError:
                    raise ValueError(f"{item!r} is not a rate limit (e.g. '100/minute')") from None
        return value

    # -- data protection (issue 6) --
    key_version: int = Field(default=1, ge=1, le=0xFFFFFFFF)
    """Key id new data is encrypted with; bump it to rotate, then run ``keys rotate``."""
    key_min_version: int = Field(default=1, ge=1)
    """Oldest key version still readable; raise it once ``keys rotate`` has finished."""
    token_vault_url: str = "sqlite:///./pynomaly_tokens.db"  # noqa: S105 (a path, not a secret)
    """Token vault: ``sqlite:///path``, ``redis://...`` or ``postgresql://...``."""
    privacy_budget_epsilon: float = Field(default=1.0, gt=0)
    """Total differential-privacy epsilon each dataset may spend."""
    privacy_field_bounds: dict[str, tuple[float, float]] = Field(default_factory=dict)
    """Declared clamping bounds per field for differential privacy, JSON:
    ``{"age": [0, 120], "salary": [0, 500000]}``. From what a field can hold, never
    from the data (its extremes are individual records)."""

    @field_validator("privacy_field_bounds")
    @classmethod
    def _finite_bounds(
        cls, value: dict[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        for name, (lo, hi) in value.items():
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"bounds of {name!r} must be finite with lower <= upper")
        return value

    # -- request identity and our own surface (issue 12: hosts, docs, schema) --
    allowed_hosts: StrList = Field(default_factory=lambda: list(DEFAULT_ALLOWED_HOSTS))
    """Host names the app answers to (Starlette TrustedHostMiddleware semantics:
    ``api.example.com``, ``*.example.com`` for subdomains, ``*`` for any host; no
    port). Other ``Host`` headers get 400, so no redirect or link points to them.
    The default is local names only: a deployed app must name its hosts."""
    csp_docs_paths: StrList = Field(default_factory=list)
    """More paths served as API docs pages (self-hosted Swagger UI or ReDoc, e.g.
    ``/api-docs``): their inline scripts are allowed by hash, computed from each
    response. FastAPI's ``docs_url``, ``redoc_url`` and OAuth2 redirect, and those
    of FastAPI apps mounted in the app, are found without it."""
    csp_docs_asset_origins: StrList = Field(default_factory=list)
    """Origins the docs pages may load scripts, styles, images and fonts from, besides
    the app itself and the CDNs FastAPI's pages use (e.g. ``https://static.example.com``)."""
    admin_routes_in_schema: bool = False
    """List ``/api/security/*`` in the app's OpenAPI schema (``/docs``); off by default,
    so the public docs do not map the admin API (the routes work either way)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        flat = _FlatSectionNames(settings_cls, env_settings, dotenv_settings)
        sources = [init_settings, flat, env_settings, dotenv_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:  # below the environment and .env: they win over the file
            sources.append(JsonConfigFile(settings_cls, config_file, SECTIONS))
        return (*sources, file_secret_settings)

    # -- the integration guide's encryption settings (issue 14) --
    @field_validator("encryption_algorithm", mode="before")
    @classmethod
    def _no_cbc(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "aes_cbc":
            raise ValueError(
                "aes_cbc is not offered: CBC without a MAC is malleable (bit flipping, "
                "padding oracles); use aes_gcm (AES-256-GCM) or fernet (AES-CBC with "
                "HMAC-SHA256, encrypt-then-MAC), both authenticated"
            )
        return value

    @field_validator("encryption_key_length")
    @classmethod
    def _key_length(cls, value: int) -> int:
        if value != 32:
            raise ValueError(
                "must be 32: aes_gcm (AES-256) and fernet (AES key + HMAC key) both take "
                "32-byte keys"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _group_sections(cls, data: Any) -> Any:
        """Flat section names (keyword arguments, environment, ``.env``) into their
        section; a section given whole (``inspection={...}``, a keyword argument) has
        priority over flat names."""
        if not isinstance(data, dict):
            return data
        for section, model in SECTIONS.items():
            flat = {
                name: data.pop(_flat_name(section, name))
                for name in model.model_fields
                if _flat_name(section, name) in data
            }
            if flat:
                given = data.get(section)
                whole = given.model_dump() if isinstance(given, BaseModel) else dict(given or {})
                data[section] = {**flat, **whole}
        return data

    @field_validator("allowed_hosts", "csp_docs_paths", "csp_docs_asset_origins", mode="before")
    @classmethod
    def _issue12_surface_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        from pynomaly_security.network.hosts import TrustedHosts

        TrustedHosts(value)  # ConfigurationError (a ValueError) names the bad pattern
        return value

    @field_validator("csp_docs_asset_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        from pynomaly_security.middleware.headers import check_source

        for origin in value:
            check_source(origin)
        return value

    @field_validator(
        "login_paths",
        "inspect_headers",
        "credential_fields",
        "trusted_proxies",
        "api_key_headers",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("api_key_headers")
    @classmethod
    def _header_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if _HEADER_NAME.fullmatch(name) is None:
                raise ValueError(f"{name!r} is not a header name (RFC 9110 token)")
        return [name.lower() for name in value]

    @field_validator("detection_exclusions", mode="before")
    @classmethod
    def _exclusions(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if isinstance(value, dict):
            return {k: _split_list(v) for k, v in value.items()}
        return value

    @field_validator("trusted_proxies", "decision_allow_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad CIDR
        return value


def _env_name(loc: tuple[int | str, ...]) -> str:
    if loc and loc[0] in ("master_key", MASTER_KEY_ENV):
        return MASTER_KEY_ENV
    if len(loc) > 1 and loc[0] in SECTIONS:
        loc = (_flat_name(str(loc[0]), str(loc[1])), *loc[2:])
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc)


def _source_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable at fault or, when it is not set and a configuration
    file is, the key in that file (environment variables win over the file)."""
    env = _env_name(loc)
    config = os.environ.get(CONFIG_ENV)
    if config and env.upper() not in {name.upper() for name in os.environ}:
        return f"{'.'.join(str(part) for part in loc)} in {CONFIG_ENV} ({config}; or {env})"
    return env


def load_settings(**overrides: Any) -> SecuritySettings:
    """Read the settings from the environment, turning validation errors into a
    :class:`ConfigurationError` that names each environment variable at fault
    and what it accepts."""
    try:
        return SecuritySettings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False, include_input=False):
            lines.append(f"{_source_name(tuple(err['loc']))}: {err['msg']}")
        raise ConfigurationError("invalid security settings:\n  " + "\n  ".join(lines)) from exc
