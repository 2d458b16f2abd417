"""What to do about a ledger: the same steps and commands for `status` and the team pages."""

from equip_mailer.send.ledger_advice import next_steps

SPEC = "campaigns/2019-04-equip-training.yaml"


def test_pending_and_failed_recipients_are_sent_by_running_send_again():
    [step] = next_steps(SPEC, {"sent": 10, "failed": 2})
    assert step.command == f"equip-mailer send {SPEC}"


def test_uncertain_recipients_are_counted_in_people_with_the_check_and_the_retry():
    steps = next_steps(SPEC, {"pending": 1, "uncertain": 3})
    assert [s.command for s in steps] == [
        f"equip-mailer send {SPEC}",
        f"equip-mailer status {SPEC} --check-sendgrid",
        f"equip-mailer send {SPEC} --retry-uncertain",
    ]
    assert steps[1].text.startswith("3 recipient(s) are uncertain")
    assert "second copy" in steps[2].text


def test_a_campaign_with_past_sessions_gets_commands_that_send_accepts():
    steps = next_steps(SPEC, {"pending": 1, "uncertain": 3}, allow_past=True)
    assert [s.command for s in steps] == [
        f"equip-mailer send {SPEC} --allow-past",
        f"equip-mailer status {SPEC} --check-sendgrid",
        f"equip-mailer send {SPEC} --retry-uncertain --allow-past",
    ]


def test_nothing_to_do_when_all_are_sent_or_suppressed():
    assert next_steps(SPEC, {"sent": 10, "suppressed": 2}) == []
