"""The second factor, for customers and staff alike (django-otp).

- totp: authenticator apps (TOTPDevice): enrollment with a QR code and a manual key.
- backup_codes: single-use codes stored as keyed hashes (not django-otp's
  StaticToken, which keeps them in plain text).
- flows: verifying a code, the per-account failure limit on top of django-otp's
  per-device throttle, marking the session verified, the audit trail.
- passkeys: django-otp-webauthn's ceremonies, wired to the same flows.
- middleware: after any sign-in, no page until the second factor is passed.

The customer pages are in views; the staff admin (linking.staff.otp) uses the same
flows with its own audit action names.
"""
