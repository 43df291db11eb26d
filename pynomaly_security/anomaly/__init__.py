"""Behavioural anomaly detection (issue 22): learned per-endpoint profiles and an
Isolation Forest, scored off the request path.

- :mod:`.features`: what is read of a request (pure, no NumPy, a few microseconds);
- :mod:`.profile`: per-endpoint counts and the surprisal of a request, with findings;
  :mod:`.tallies`: the same counts as the shared backend and the model file keep them;
- :mod:`.forest`: the Isolation Forest as arrays we own (trained with scikit-learn,
  the ``[ml]`` extra; scored with NumPy);
- :mod:`.model`: profile + forest, the 1-99 score, files with version and digests;
- :mod:`.principals`: per-principal sliding windows (bounded);
- :mod:`.engine`: learn, detect, prevent in a worker (a batch job of the monitor);
- :mod:`.corpus`, :mod:`.evaluate`: JSON Lines and the metrics of ``anomaly evaluate``.

The layer is :class:`~pynomaly_security.middleware.anomaly.AnomalyMiddleware`, the read
API ``/api/security/anomaly`` (:mod:`pynomaly_security.api.anomaly_routes`), the CLI
``python -m pynomaly_security anomaly`` (:mod:`pynomaly_security.cli.anomaly`).
"""
