"""The per-endpoint profile on a small generated corpus (issue 22, item 6)."""

from __future__ import annotations

from pynomaly_security.anomaly.corpus import request_features
from pynomaly_security.anomaly.profile import Profile, ProfileBounds

from ._traffic import anomalies, normal

SALT = b"0123456789abcdef"


def _trained(n: int = 800) -> Profile:
    profile = Profile(min_requests=20)
    for record in normal(n):
        profile.learn(request_features(record, salt=SALT))
    return profile


def test_obvious_anomalies_score_far_above_normal_traffic() -> None:
    """Every crafted anomaly is more surprising than every unseen normal request."""
    profile = _trained()
    normal_scores = [profile.score(request_features(r, salt=SALT))[0] for r in normal(400, seed=9)]
    worst_normal = max(normal_scores)
    for name, record in anomalies():
        surprisal, findings = profile.score(request_features(record, salt=SALT))
        assert surprisal > worst_normal + 2, (name, surprisal, worst_normal)
        assert findings, name


def test_findings_name_what_was_unusual() -> None:
    """The explanation names the feature and the parameter, never the value."""
    profile = _trained()
    _, letters = profile.score(request_features(dict(anomalies())["letters_in_zip"], salt=SALT))
    assert any(f.where == "zip" and "shape" in f.what for f in letters)
    _, unknown = profile.score(request_features(dict(anomalies())["unknown_parameter"], salt=SALT))
    assert unknown[0].what == "unknown parameter" and unknown[0].where == "debug"
    _, backup = profile.score(request_features(dict(anomalies())["backup_file"], salt=SALT))
    assert {f.what for f in backup} >= {"unknown endpoint", "unknown file extension"}
    for f in letters + unknown + backup:
        assert "abcde" not in f.what + f.where


def test_counts_round_trip_through_tallies() -> None:
    """The profile is its counts: rebuilt from them it scores every request the same."""
    profile = _trained(400)
    again = Profile.from_tallies(profile.to_tallies(), min_requests=20)
    for record in [*normal(50, seed=3), *(r for _, r in anomalies())]:
        f = request_features(record, salt=SALT)
        assert abs(profile.score(f)[0] - again.score(f)[0]) < 1e-9


def test_learning_deltas_add_up_across_workers() -> None:
    """Two workers' deltas added together give the profile one worker would have learned."""
    from collections import Counter

    one, a, b = Profile(), Profile(), Profile()
    da: Counter[str] = Counter()
    db: Counter[str] = Counter()
    for i, record in enumerate(normal(300)):
        f = request_features(record, salt=SALT)
        one.learn(f)
        (a if i % 2 else b).learn(f, da if i % 2 else db)
    assert Profile.from_tallies(da + db).to_tallies() == one.to_tallies()


def test_bounds_hold_under_a_flood_of_new_names() -> None:
    """Endpoints, parameters and shapes past their bounds are counted, never kept."""
    profile = Profile(ProfileBounds(endpoints=10, params=5, shapes=4, values=4))
    for i in range(2_000):
        profile.learn(
            request_features(
                {"method": "GET", "uri": f"/p{i % 50}?a{i}=x{'-' * (i % 9)}&b=1", "headers": {}},
                salt=SALT,
            )
        )
    assert len(profile.endpoints) == 10 and profile.endpoint_other > 0
    for ep in profile.endpoints.values():
        assert len(ep.params) <= 5
        assert all(len(p.shapes) <= 4 and len(p.values) <= 4 for p in ep.params.values())
    tallies = Profile.from_tallies(profile.to_tallies(), ProfileBounds(endpoints=3)).endpoints
    assert len(tallies) == 3


def test_malformed_tally_keys_are_ignored() -> None:
    """A foreign key in the shared tallies cannot break loading or scoring."""
    profile = Profile.from_tallies({"n": 5, "e|%2Fx|p": 3, "pc|999": 1, "zz": 2, "e|a|p|b|c|x": 1})
    assert profile.n == 5
