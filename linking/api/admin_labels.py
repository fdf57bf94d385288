"""Names for allauth's OpenID Connect models in the admin, in both languages: allauth
names most of their fields in English only (plain strings, not translatable)."""

from allauth.idp.oidc.models import Client, Token
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from linking.staff.filters import titled
from linking.staff.labels import when

# Field -> (label, help text or None to keep allauth's, which is translatable).
_CLIENT_FIELDS = {
    "id": (_("client ID"), None),
    "name": (_("client name"), None),
    "type": (_("client type"), None),
    "scopes": (_("scopes"), None),
    "default_scopes": (_("default scopes"), None),
    "grant_types": (_("grant types"), None),
    "response_types": (_("response types"), None),
    "redirect_uris": (_("redirect URIs"), _("The allowed redirect (callback) URLs, one a line.")),
    "cors_origins": (_("CORS origins"), None),
    "allow_uri_wildcards": (_("wildcards in URIs"), None),
    "skip_consent": (_("skip the consent screen"), _("Sign the customer in without asking.")),
    "owner": (_("owner"), None),
    "data": (_("data"), None),
}


class ClientLabels:
    """For a ModelAdmin of allauth's Client: every field, column and filter named."""

    list_display = ("client_name", "client_id", "client_type", "consent_skipped", "created")
    list_filter = (
        ("type", titled(_("client type"))),
        ("skip_consent", titled(_("skip the consent screen"))),
        ("allow_uri_wildcards", titled(_("wildcards in URIs"))),
    )
    fields = (
        "id",
        "name",
        "type",
        "hashed_secret",
        "scopes",
        "default_scopes",
        "grant_types",
        "response_types",
        "redirect_uris",
        "cors_origins",
        "allow_uri_wildcards",
        "skip_consent",
        "owner",
        "data",
        "created",
    )
    readonly_fields = ("hashed_secret", "created")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        label, help_text = _CLIENT_FIELDS.get(db_field.name, (None, None))
        if formfield is not None and label is not None:
            formfield.label = label
            if help_text is not None:
                formfield.help_text = help_text
        return formfield

    @admin.display(description=_("client name"), ordering="name")
    def client_name(self, obj: Client) -> str:
        return obj.name

    @admin.display(description=_("client ID"), ordering="id")
    def client_id(self, obj: Client) -> str:
        return obj.id

    @admin.display(description=_("client type"), ordering="type")
    def client_type(self, obj: Client) -> str:
        return obj.get_type_display()

    @admin.display(description=_("skip the consent screen"), boolean=True)
    def consent_skipped(self, obj: Client) -> bool:
        return obj.skip_consent

    @admin.display(description=_("secret (stored hashed)"))
    def hashed_secret(self, obj: Client) -> str:
        # Set (and shown once) when the client is saved.
        return obj.secret if Client.objects.filter(pk=obj.pk).exists() else "-"

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, obj: Client) -> str:
        return when(obj.created_at)


_TOKEN_KINDS = {
    Token.Type.INITIAL_ACCESS_TOKEN: _("initial access token"),
    Token.Type.ACCESS_TOKEN: _("access token"),
    Token.Type.REFRESH_TOKEN: _("refresh token"),
    Token.Type.AUTHORIZATION_CODE: _("authorization code"),
}


class _TokenKindFilter(admin.SimpleListFilter):
    title = _("kind")
    parameter_name = "type"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        return list(_TOKEN_KINDS.items())

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


class TokenLabels:
    """For a ModelAdmin of allauth's Token: named columns, no editing (a token is
    removed to revoke it)."""

    list_display = ("client_name", "kind", "person", "created", "expires")
    list_filter = (_TokenKindFilter,)
    list_select_related = ("client", "user")
    fields = list_display
    readonly_fields = fields

    @admin.display(description=_("client"), ordering="client__name")
    def client_name(self, obj: Token) -> str:
        return obj.client.name if obj.client else "-"

    @admin.display(description=_("kind"), ordering="type")
    def kind(self, obj: Token) -> str:
        return _TOKEN_KINDS.get(obj.type, obj.type)

    @admin.display(description=_("person"))
    def person(self, obj: Token) -> str:
        return str(obj.user) if obj.user else "-"

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, obj: Token) -> str:
        return when(obj.created_at)

    @admin.display(description=_("expires at"), ordering="expires_at")
    def expires(self, obj: Token) -> str:
        return when(obj.expires_at)
