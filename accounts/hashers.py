from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idPasswordHasher(Argon2PasswordHasher):
    """Argon2id at OWASP's first recommended setting: 19 MiB, 2 passes, 1 lane.

    Django's defaults (100 MiB, 8 lanes) cost about 9x more per sign-in on one core; see
    docs/security.md for the trade-off and bench/login.py for the figures. Hashes
    made with other parameters are rehashed on the next successful sign-in.
    """

    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1
