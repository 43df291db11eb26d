"""pynomaly_security: a security plugin for FastAPI and Starlette.

One line wires it::

    from pynomaly_security import setup_security_middleware, add_security_endpoints

    stack = setup_security_middleware(app)
    add_security_endpoints(app)
"""

from __future__ import annotations

from pynomaly_security.api.deps import AdminAPIKey
from pynomaly_security.api.router import add_security_endpoints, create_security_router
from pynomaly_security.audit import AuditLogger
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
from pynomaly_security.detection import Finding, Inspector, RequestParts, Verdict
from pynomaly_security.exceptions import (
    AuditIntegrityError,
    AuthenticationError,
    ConfigurationError,
    InvalidToken,
    SecurityError,
    StorageError,
)
from pynomaly_security.middleware.audit import AccessRecorder, AuditMiddleware
from pynomaly_security.middleware.headers import HeaderPolicy, SecurityHeadersMiddleware
from pynomaly_security.middleware.inspection import InputInspectionMiddleware
from pynomaly_security.middleware.masking import ResponseMaskingMiddleware
from pynomaly_security.middleware.ratelimit import RateLimitMiddleware
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
from pynomaly_security.plugin import SecurityStack, setup_security_middleware
from pynomaly_security.protection import AdvancedDataProtection, classify
from pynomaly_security.sanitize import InputSanitizer
from pynomaly_security.settings import SecuritySettings, load_settings

__version__ = "0.1.0"

__all__ = [
    "AccessRecorder",
    "AdminAPIKey",
    "AdvancedDataProtection",
    "AnomalousAccessDetector",
    "AuditIntegrityError",
    "AuditLogger",
    "AuditMiddleware",
    "AuthenticationError",
    "BruteForceDetector",
    "ClientIPResolver",
    "ConfigurationError",
    "CurrentUser",
    "DataEncryption",
    "FieldEncryption",
    "Finding",
    "HeaderPolicy",
    "InjectionAttackDetector",
    "InputInspectionMiddleware",
    "InputSanitizer",
    "Inspector",
    "InvalidToken",
    "KeyRing",
    "LockoutManager",
    "LoginLockoutMiddleware",
    "RateLimitMiddleware",
    "RequestParts",
    "RequireUser",
    "ResponseMaskingMiddleware",
    "RouteRateLimit",
    "SecurityAlert",
    "SecurityError",
    "SecurityEvent",
    "SecurityHeadersMiddleware",
    "SecurityMiddleware",
    "SecurityMonitor",
    "SecuritySettings",
    "SecurityStack",
    "StorageError",
    "ThreatDetector",
    "ThreatLevel",
    "UserTracker",
    "UserTrackingMiddleware",
    "Verdict",
    "ZeroTrustAuthenticator",
    "__version__",
    "add_security_endpoints",
    "build_auth_router",
    "classify",
    "create_security_router",
    "install_authenticator",
    "load_settings",
    "setup_security_middleware",
]
