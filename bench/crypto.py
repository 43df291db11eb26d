"""Cost of encrypting and decrypting one field, per algorithm (microseconds).

    .venv/bin/python bench/crypto.py [--number 20000] [--repeat 7]

For each algorithm (``fernet``, ``aes_gcm``) and value size, times one
``encrypt_sensitive_data`` + ``decrypt_sensitive_data`` round trip of a value
bound to its (table, field, record id) context -- what ``encrypt_record`` /
``decrypt_record`` do per field -- plus the whole record path per field and a
blind-index computation. Prints the median of ``--repeat`` runs (and the best)
in microseconds per operation. Key derivation is cached, so it is not counted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import timeit

from pynomaly_security.crypto import DataEncryption, EncryptionContext, FieldEncryption, KeyRing


def _measure(func: object, number: int, repeat: int) -> tuple[float, float]:
    runs = timeit.repeat(func, number=number, repeat=repeat)  # type: ignore[arg-type]
    per_op = [r / number * 1e6 for r in runs]
    return statistics.median(per_op), min(per_op)


def _rows(enc: DataEncryption, ctx: EncryptionContext, args: argparse.Namespace) -> None:
    for label, value in (("11 B (SSN)", "123-45-6789"), ("256 B", "x" * 256)):
        token = enc.encrypt_sensitive_data(value, context=ctx)

        def round_trip(value: str = value) -> None:
            t = enc.encrypt_sensitive_data(value, context=ctx)
            enc.decrypt_sensitive_data(t, str, context=ctx)

        def encrypt(value: str = value) -> None:
            enc.encrypt_sensitive_data(value, context=ctx)

        def decrypt(token: str = token) -> None:
            enc.decrypt_sensitive_data(token, str, context=ctx)

        for name, func in (
            (f"encrypt+decrypt {label}", round_trip),
            (f"encrypt only {label}", encrypt),
            (f"decrypt only {label}", decrypt),
        ):
            median, best = _measure(func, args.number, args.repeat)
            print(f"{enc.algorithm:<9} {name:<40} {median:8.2f} {best:8.2f}")
    fields = FieldEncryption(enc)
    fields.register_encrypted_field("users", "ssn")
    fields.register_encrypted_field("users", "email", blind_index=True)
    record = {"id": "u1", "ssn": "123-45-6789", "email": "ada@example.com"}

    def record_path() -> None:
        fields.decrypt_record("users", fields.encrypt_record("users", record))

    median, best = _measure(record_path, args.number // 2, args.repeat)
    label = "record, per field (2 fields, 1 bidx)"
    print(f"{enc.algorithm:<9} {label:<40} {median / 2:8.2f} {best / 2:8.2f}")
    if enc.algorithm == "aes_gcm":
        median, best = _measure(
            lambda: fields.blind_index("users", "email", "ada@example.com"),
            args.number,
            args.repeat,
        )
        print(f"{'-':<9} {'blind index (HMAC-SHA256)':<40} {median:8.2f} {best:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ring = KeyRing(os.urandom(32), current_version=2)
    ctx = EncryptionContext("users", "ssn", "7f0c2a9e-2d1b-4c55-9a43-2b0f6d1e8c11")
    print(
        f"python {platform.python_version()} on {platform.machine()}; "
        f"{args.number} ops x {args.repeat} runs; median (best) us per op"
    )
    print(f"{'algorithm':<9} {'operation':<40} {'median':>8} {'best':>8}")
    for algorithm in ("fernet", "aes_gcm"):
        _rows(DataEncryption(keyring=ring, algorithm=algorithm), ctx, args)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
