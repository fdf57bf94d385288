"""Demo data for `manage.py seed_demo` (accounts side): a published privacy notice, so
/privacy/ and sign-up show one, agreed to by the demo customer."""

from django.utils import timezone

from accounts import consent
from accounts.models import ConsentNotice, ConsentRecord, Customer

NOTICE = {
    "purpose_ja": (
        "統合IDの提供（ログイン、会員証の表示）、グループ各サービスのアカウント連携とポイントの"
        "合算、お問い合わせへの対応、不正利用の防止のために利用します。"
    ),
    "purpose_en": (
        "To provide the unified ID (sign-in, the member card), to link your accounts at the "
        "group's services and add up their points, to answer your questions, and to prevent "
        "misuse."
    ),
    "joint_companies_ja": "サンプル商事株式会社、サンプルストア株式会社、サンプルポイント株式会社",
    "joint_companies_en": (
        "Sample Trading Co., Ltd., Sample Store Co., Ltd., Sample Point Co., Ltd."
    ),
    "joint_data_ja": "統合ID、氏名、メールアドレス、電話番号、各サービスの会員番号、ポイント残高",
    "joint_data_en": (
        "Unified ID, name, email address, phone number, member numbers at each service, "
        "point balances"
    ),
    "joint_purposes_ja": "ポイントの合算と利用、グループ共通の会員サービスの提供",
    "joint_purposes_en": "Adding up and using points, and membership services across the group",
    "responsible_company_ja": "サンプル商事株式会社（東京都千代田区丸の内1-1-1）",
    "responsible_company_en": "Sample Trading Co., Ltd. (1-1-1 Marunouchi, Chiyoda-ku, Tokyo)",
}


def seed_notice(customer: Customer) -> ConsentNotice:
    """Publish the demo notice once; the demo customer agreed to it at sign-up."""
    notice = consent.current_notice()
    if notice is None:
        notice = ConsentNotice.objects.create(**NOTICE, published_at=timezone.now())
    if consent.needs_agreement(customer):
        consent.agree(customer=customer, notice=notice, source=ConsentRecord.Source.SIGNUP)
    return notice
