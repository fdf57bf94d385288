"""Proofs of ownership: each module checks one kind of proof and, on success,
links through linking.claims. None of them can sign anyone in."""

from django.utils.translation import gettext_lazy as _


class ProofRefused(Exception):
    """The proof did not hold; `message` is safe to show the customer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProofThrottled(ProofRefused):
    def __init__(self) -> None:
        super().__init__(_("Too many attempts. Please wait 15 minutes and try again."))
