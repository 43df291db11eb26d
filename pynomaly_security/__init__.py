"""pynomaly_security: a security plugin for FastAPI and Starlette.

One line wires it::

    from pynomaly_security import setup_security_middleware, add_security_endpoints

    stack = setup_security_middleware(app)
    add_security_endpoints(app)

``__all__`` is what users import to wire the layers by hand or to call them: every
middleware, the settings, the plugin and its installers, the monitor, the audit
logger and its event types, the exceptions. Subpackages are public for advanced
use; ``tests/test_public_api.py`` checks both directions (httpx's
``test_exported_members``).
"""

from __future__ import annotations

from pynomaly_security.api.deps import AdminAPIKey
from pynomaly_security.api.router import add_security_endpoints, create_security_router
from pynomaly_security.audit import (
    AuditEvent,
    AuditLevel,
    AuditLogger,
    AuditReceipt,
    ComplianceStandard,
    SecurityEventType,
    audit_action,
    audit_context,
)
from pynomaly_security.auth import (
    CurrentUser,
    LockoutManager,
    RequireUser,
    RouteRateLimit,
    ZeroTrustAuthenticator,
    build_auth_router,
    install_authenticator,
)
from pynomaly_security.auth.login_guard import LoginLockoutMiddleware
from pynomaly_security.crypto import DataEncryption, FieldEncryption, KeyRing
from pynomaly_security.decisions.middleware import DecisionMiddleware
from pynomaly_security.detection import Inspector, RequestParts, RuleFinding, Verdict
from pynomaly_security.detection.exemptions import inspection_exempt
from pynomaly_security.exceptions import (
    AuditIntegrityError,
    AuthenticationError,
    ConfigurationError,
    InvalidToken,
    SecurityError,
    StorageError,
)
from pynomaly_security.incidents.automation import IncidentResponseAutomation
from pynomaly_security.incidents.model import IncidentSeverity, IncidentStatus
from pynomaly_security.incidents.store import IncidentNotFound
from pynomaly_security.middleware.anomaly import AnomalyMiddleware
from pynomaly_security.middleware.audit import AccessRecorder, AuditMiddleware
from pynomaly_security.middleware.errors import secure_server_errors
from pynomaly_security.middleware.headers import HeaderPolicy, SecurityHeadersMiddleware
from pynomaly_security.middleware.inspection import InputInspectionMiddleware
from pynomaly_security.middleware.masking import ResponseMaskingMiddleware
from pynomaly_security.middleware.ratelimit import RateLimitMiddleware
from pynomaly_security.middleware.sqlsink import SQLSinkMiddleware
from pynomaly_security.middleware.stack import SecurityMiddleware
from pynomaly_security.middleware.tracking import UserTrackingMiddleware
from pynomaly_security.monitor import (
    AnomalousAccessDetector,
    BruteForceDetector,
    InjectionAttackDetector,
    SecurityAlert,
    SecurityEvent,
    SecurityMonitor,
    ThreatDetector,
    ThreatLevel,
    UserTracker,
)
from pynomaly_security.network.client_ip import ClientIPResolver
from pynomaly_security.orchestrator import AdvancedSecurityOrchestrator
from pynomaly_security.plugin import SecurityStack, setup_security_middleware
from pynomaly_security.policy.engine import SecurityPolicyEngine
from pynomaly_security.policy.middleware import PolicyMiddleware
from pynomaly_security.protection import AdvancedDataProtection, SensitiveSpan, classify
from pynomaly_security.sanitize import InputSanitizer, SanitizationConfig, SanitizedStr
from pynomaly_security.settings import SanitizationLevel, SecuritySettings, load_settings
from pynomaly_security.sql import QueryAnalysis, SafeQueryBuilder, SQLInjectionProtector
from pynomaly_security.sql.errors import SQLInjectionBlocked
from pynomaly_security.sql.hooks import (
    ProtectedSQLiteConnection,
    install_sql_protection,
    protect_psycopg,
    protect_sqlalchemy,
)
from pynomaly_security.tenancy.middleware import TenancyMiddleware
from pynomaly_security.validation import install_validation_handler
from pynomaly_security.vulns.assessment import AutomatedVulnerabilityAssessment

__version__ = "0.1.0"

__all__ = [
    "AccessRecorder",
    "AdminAPIKey",
    "AdvancedDataProtection",
    "AdvancedSecurityOrchestrator",
    "AnomalousAccessDetector",
    "AnomalyMiddleware",
    "AuditEvent",
    "AuditIntegrityError",
    "AuditLevel",
    "AuditLogger",
    "AuditMiddleware",
    "AuditReceipt",
    "AuthenticationError",
    "AutomatedVulnerabilityAssessment",
    "BruteForceDetector",
    "ClientIPResolver",
    "ComplianceStandard",
    "ConfigurationError",
    "CurrentUser",
    "DataEncryption",
    "DecisionMiddleware",
    "FieldEncryption",
    "HeaderPolicy",
    "IncidentNotFound",
    "IncidentResponseAutomation",
    "IncidentSeverity",
    "IncidentStatus",
    "InjectionAttackDetector",
    "InputInspectionMiddleware",
    "InputSanitizer",
    "Inspector",
    "InvalidToken",
    "KeyRing",
    "LockoutManager",
    "LoginLockoutMiddleware",
    "PolicyMiddleware",
    "ProtectedSQLiteConnection",
    "QueryAnalysis",
    "RateLimitMiddleware",
    "RequestParts",
    "RequireUser",
    "ResponseMaskingMiddleware",
    "RouteRateLimit",
    "RuleFinding",
    "SQLInjectionBlocked",
    "SQLInjectionProtector",
    "SQLSinkMiddleware",
    "SafeQueryBuilder",
    "SanitizationConfig",
    "SanitizationLevel",
    "SanitizedStr",
    "SecurityAlert",
    "SecurityError",
    "SecurityEvent",
    "SecurityEventType",
    "SecurityHeadersMiddleware",
    "SecurityMiddleware",
    "SecurityMonitor",
    "SecurityPolicyEngine",
    "SecuritySettings",
    "SecurityStack",
    "SensitiveSpan",
    "StorageError",
    "TenancyMiddleware",
    "ThreatDetector",
    "ThreatLevel",
    "UserTracker",
    "UserTrackingMiddleware",
    "Verdict",
    "ZeroTrustAuthenticator",
    "__version__",
    "add_security_endpoints",
    "audit_action",
    "audit_context",
    "build_auth_router",
    "classify",
    "create_security_router",
    "inspection_exempt",
    "install_authenticator",
    "install_sql_protection",
    "install_validation_handler",
    "load_settings",
    "protect_psycopg",
    "protect_sqlalchemy",
    "secure_server_errors",
    "setup_security_middleware",
]
