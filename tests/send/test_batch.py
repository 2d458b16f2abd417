"""What a backend is given: readers' display names, addresses kept out of messages, and a
reader SendGrid would refuse caught before anything is claimed."""

from __future__ import annotations

import pytest
from support.mail_batches import batch

from equip_mailer.errors import DeliveryError
from equip_mailer.send.batch import Addressee, check_addressee, display_name, mask_addresses


def test_provider_messages_lose_their_addresses():
    assert mask_addresses("to bob@example.org now") == "to b***@e***.org now"


def test_display_names_drop_what_sendgrid_refuses():
    assert display_name("Ann", "Smith") == "Ann Smith"
    assert display_name("Smith, Ann", "(GP); Dr") == "Smith Ann (GP) Dr"
    assert display_name('"Bob"', None) == "Bob"
    assert display_name(None, None) == ""


def test_a_reader_whose_values_sendgrid_would_refuse_is_named_without_the_address():
    big = Addressee(7, "ann.smith@nhs.net", "Ann", {"-eq_x-": "x" * 10_001}, "u")
    with pytest.raises(DeliveryError, match="recipient 7 \\(a\\*\\*\\*@n\\*\\*\\*.net\\)"):
        check_addressee(batch(1), big)
    check_addressee(batch(1), batch(1).addressees[0])  # an ordinary reader passes


def test_a_batch_describes_itself_for_messages():
    assert batch(2).describe() == "batch s1 (segment getting-started, 2 recipients)"
