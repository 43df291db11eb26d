"""The dashboard page's files (HTML, script, style), served by ``api/metrics_routes.py``."""
