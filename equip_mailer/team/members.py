"""Who may sign in to the team pages: the addresses in the project's settings.

Membership is checked at every request, not only at sign-in, so taking someone off the list
ends their sessions and voids their unused links at once.
"""

from __future__ import annotations

from dataclasses import dataclass


def address_key(address: str) -> str:
    """The form addresses are compared and stored in: trimmed and lower-cased."""
    return address.strip().lower()


@dataclass(frozen=True)
class Team:
    addresses: frozenset[str]

    @classmethod
    def of(cls, addresses: tuple[str, ...] | list[str]) -> Team:
        return cls(frozenset(address_key(a) for a in addresses if a.strip()))

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and address_key(address) in self.addresses

    def __bool__(self) -> bool:
        return bool(self.addresses)
