"""``python -m pynomaly_security anomaly <train|evaluate>``: behavioural models (issue 22).

``anomaly train FILE.jsonl --output MODEL_DIR`` learns the per-endpoint profile
(and, with the ``[ml]`` extra, the Isolation Forest) from the file's normal
requests (``label`` normal/benign; of ``set`` train when the lines say) and
writes the model directory (:mod:`pynomaly_security.anomaly.model`).

``anomaly evaluate FILE.jsonl --model MODEL_DIR`` scores the file's requests (of
``set`` test when the lines say) and prints ``ROC-AUC <value>`` first, then
PR-AUC and the detection rate at 0.1 %, 0.5 % and 1 % false alarms, their 95 %
bootstrap intervals, the Isolation Forest alone and the profile alone as
baselines, detection per category where the records have one, and what the
1-99 score flags. Needs the ``[ml]`` extra. ``--json`` prints one JSON object.

Exit 2 with a message on stderr for a bad file or model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pynomaly_security.anomaly.corpus import CorpusError, read_corpus
from pynomaly_security.anomaly.features import secret_names
from pynomaly_security.anomaly.model import AnomalyModel, ModelError, load, numpy_available, save
from pynomaly_security.anomaly.profile import Profile
from pynomaly_security.detection.policy import DEFAULT_CREDENTIAL_FIELDS

__all__ = ["register"]

BATCH = 1024


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("anomaly", help="Train and evaluate behavioural models.")
    sub = parser.add_subparsers(dest="anomaly_command", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="Learn a model from normal requests (JSON Lines).")
    train.add_argument("file", type=Path)
    train.add_argument("--output", type=Path, required=True, metavar="MODEL_DIR")
    train.add_argument("--no-forest", action="store_true", help="the profile alone")
    train.add_argument("--min-requests", type=int, default=20)
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=_train)
    ev = sub.add_parser("evaluate", help="Measure a model on labelled requests.")
    ev.add_argument("file", type=Path)
    ev.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR")
    ev.add_argument("--rounds", type=int, default=200, help="bootstrap resamples")
    ev.add_argument("--all", action="store_true", help="every line, whatever its set")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_evaluate)


def _fail(message: str) -> int:
    print(f"anomaly: {message}", file=sys.stderr)
    return 2


SECRETS = secret_names(DEFAULT_CREDENTIAL_FIELDS)


def _train(args: argparse.Namespace) -> int:
    import secrets

    salt = secrets.token_bytes(16)
    profile = Profile(min_requests=args.min_requests)
    vectors: list[list[float]] = []
    use_forest = not args.no_forest and _sklearn_available()
    if use_forest:
        from pynomaly_security.anomaly.forest import request_vector
    try:
        for row in read_corpus(
            args.file, salt=salt, secret_fields=SECRETS, sets=frozenset({"train"})
        ):
            if row.anomalous:
                continue
            profile.learn(row.features)
            if use_forest:
                vectors.append(request_vector(row.features))
    except (OSError, CorpusError) as exc:
        return _fail(str(exc))
    if profile.n == 0:
        return _fail("no normal requests to learn from")
    forest = None
    if use_forest:
        from pynomaly_security.anomaly.forest import REQUEST_FEATURES, Forest

        forest = Forest.train(vectors, REQUEST_FEATURES, seed=args.seed)
    manifest = save(AnomalyModel(profile, forest, salt), args.output)
    print(
        json.dumps(
            {"output": str(args.output), "forest": forest is not None, **manifest["profile"]}
        )
    )
    return 0


def _sklearn_available() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


def _evaluate(args: argparse.Namespace) -> int:
    if not (numpy_available() and _sklearn_available()):
        return _fail("evaluate needs the [ml] extra (pip install 'pynomaly-security[ml]')")
    from pynomaly_security.anomaly.evaluate import evaluate_scores

    try:
        model = load(args.model)
    except ModelError as exc:
        return _fail(f"model refused: {exc}")
    labels: list[bool] = []
    categories: list[str] = []
    total: list[float] = []
    profile_only: list[float] = []
    forest_only: list[float] = []
    scores: list[int] = []
    batch: list[Any] = []
    started = time.perf_counter()

    def flush() -> None:
        for a in model.assess([r.features for r in batch]):
            total.append(a.surprisal)
            profile_only.append(a.profile)
            if a.forest is not None:
                forest_only.append(a.forest)
            scores.append(a.score)
        batch.clear()

    try:
        sets = None if args.all else frozenset({"test"})
        for row in read_corpus(args.file, salt=model.salt, secret_fields=SECRETS, sets=sets):
            labels.append(row.anomalous)
            categories.append(row.category)
            batch.append(row)
            if len(batch) >= BATCH:
                flush()
        flush()
    except (OSError, CorpusError) as exc:
        return _fail(str(exc))
    elapsed = time.perf_counter() - started
    try:
        main = evaluate_scores(total, labels, categories, rounds=args.rounds)
    except ValueError as exc:
        return _fail(str(exc))
    baselines = {"profile alone": evaluate_scores(profile_only, labels, rounds=args.rounds)}
    if len(forest_only) == len(labels):
        baselines["isolation forest alone"] = evaluate_scores(
            forest_only, labels, rounds=args.rounds
        )
    bands = _bands(scores, labels)
    if args.json:
        print(
            json.dumps(
                {
                    "model": main.to_dict(),
                    "baselines": {k: v.to_dict() for k, v in baselines.items()},
                    "score_bands": bands,
                    "requests_per_second": len(labels) / elapsed if elapsed else None,
                }
            )
        )
        return 0
    print(f"ROC-AUC {main.roc_auc[0]:.4f}")
    print(f"PR-AUC {main.pr_auc[0]:.4f}")
    for rate, v in main.detection.items():
        print(f"detection@{rate * 100:g}%FA {v[0]:.4f}")
    print(f"requests {main.normal} normal, {main.anomalous} anomalous")
    print(f"intervals (95%, {args.rounds} stratified bootstrap resamples):")
    for line in main.lines():
        print("  " + line)
    for name, metrics in baselines.items():
        print(f"baseline: {name}")
        for line in metrics.lines():
            print("  " + line)
    if main.per_category:
        print("per category (detected at 0.5% false alarms):")
        for cat, (n, share) in main.per_category.items():
            print(f"  {cat} {share:.4f} of {n}")
    else:
        print("per category: the labels name no categories")
    for band in bands:
        print(
            f"score <= {band['score']}: flags {band['normal']:.4%} of normal, "
            f"{band['anomalous']:.4%} of anomalous requests"
        )
    return 0


def _bands(scores: list[int], labels: list[bool]) -> list[dict[str, Any]]:
    normal = [s for s, y in zip(scores, labels, strict=True) if not y]
    bad = [s for s, y in zip(scores, labels, strict=True) if y]
    out = []
    for cut in (20, 50, 80):
        out.append(
            {
                "score": cut,
                "normal": sum(s <= cut for s in normal) / max(1, len(normal)),
                "anomalous": sum(s <= cut for s in bad) / max(1, len(bad)),
            }
        )
    return out
