"""The suite's last test: how many hostile requests it sent (issue 9 asks for at least 300)."""
from attack import COUNT

MINIMUM = 300


def test_the_suite_sent_at_least_300_hostile_requests(capsys):
    per_finding = ", ".join(f"{k}: {v}" for k, v in sorted(COUNT.by_finding.items()))
    line = f"security suite: {COUNT.sent} hostile requests sent ({per_finding})"
    with capsys.disabled():
        print("\n" + line)
        print("hostile jobs: " + ", ".join(f"{k}: {v}" for k, v in sorted(COUNT.outcomes.items())))
    assert COUNT.sent >= MINIMUM, line
