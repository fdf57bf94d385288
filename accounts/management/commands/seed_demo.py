from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Customer

DEMO_EMAIL = "demo@example.jp"
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - the documented demo login
DEMO_NAME = "山田 花子"


class Command(BaseCommand):
    help = "Create demo data (idempotent): a demo customer, group services and legacy accounts."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        customer, created = Customer.objects.get_or_create(
            email=DEMO_EMAIL, defaults={"name": DEMO_NAME}
        )
        if created:
            customer.set_password(DEMO_PASSWORD)
            customer.save()
        EmailAddress.objects.update_or_create(
            user=customer, email=DEMO_EMAIL, defaults={"verified": True, "primary": True}
        )
        verb = "created" if created else "already there"
        self.stdout.write(f"Demo customer {verb}: {DEMO_EMAIL} / {DEMO_PASSWORD}")
        self.stdout.write(f"Unified ID: {customer.unified_id_display}")

        from accounts import demo as accounts_demo

        notice = accounts_demo.seed_notice(customer)
        self.stdout.write(f"Privacy notice: version {notice.version}, published")

        from linking import demo

        accounts = demo.seed(DEMO_EMAIL)
        self.stdout.write(
            f"Legacy accounts: {accounts} in {len(demo.SERVICES)} services; the demo customer's "
            f"online-store login is {demo.DEMO_STORE_NUMBER} / {demo.DEMO_STORE_PASSWORD}"
        )
        from linking.matching import demo as matching_demo

        groups = matching_demo.seed()
        if groups:
            self.stdout.write(f"Matching (名寄せ): {groups} candidate groups to review")

        # Last: the history dates every account's import before its first day.
        history = demo.seed_history()
        if history:
            self.stdout.write(f"History: {history} links in {demo.HISTORY_DAYS} days, a campaign")
