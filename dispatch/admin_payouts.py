"""Staff screens for payouts and drivers' bank accounts (registered from dispatch/admin.py).

Payouts are read-only: their amounts come from the ledger and never change. Staff may mark a bank-file
payout paid (the bank settled it) or returned (it failed: its entry is reversed and the amount is payable
again), and retry now a payout whose outcome is unknown (with its same idempotency key).

Bank accounts are personal data: staff add them (the routing number's checksum is checked), and the
account number is shown masked on every page, the add form's input included once saved. Details are never
edited: new details are a new account, which deactivates the old one."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.errors import DomainError
from backend.fares.admin_display import money
from dispatch.models import BankAccountType, DriverBankAccount, DriverStripeAccount, Payout, PayoutStatus
from dispatch.money.payouts import bank_account_add, payout_mark_failed, payout_mark_paid, payout_retry_now


class DriverBankAccountForm(forms.ModelForm):
    account_number = forms.CharField(
        max_length=17,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="4 to 17 digits. Shown masked once saved.",
    )

    class Meta:
        model = DriverBankAccount
        fields = ["driver", "holder_name", "routing_number", "account_number", "account_type"]


@admin.register(DriverBankAccount)
class DriverBankAccountAdmin(admin.ModelAdmin):
    list_display = ["driver", "holder_name", "routing_number", "masked_account", "account_type", "is_active"]
    list_filter = ["is_active", "account_type"]
    search_fields = ["driver__phone", "driver__name", "holder_name"]
    raw_id_fields = ["driver"]
    ordering = ["-created_at"]

    @admin.display(description="Account number")
    def masked_account(self, obj: DriverBankAccount) -> str:
        return obj.masked_account_number

    def get_form(
        self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: object
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = DriverBankAccountForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        if obj is None:
            return ["driver", "holder_name", "routing_number", "account_number", "account_type"]
        return [
            "driver",
            "holder_name",
            "routing_number",
            "masked_account",
            "account_type",
            "is_active",
            "created_at",
            "created_by",
            "deactivated_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        if obj is None:
            return []
        # Only switching an active account off is allowed (a new account is added, never an old one revived).
        active = isinstance(obj, DriverBankAccount) and obj.is_active
        return [field for field in self.get_fields(request, obj) if field != "is_active" or not active]

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: DriverBankAccount, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            # Only `is_active` is editable on a saved account: switching it off stops bank-file payouts to it.
            if not obj.is_active and obj.deactivated_at is None:
                obj.deactivated_at = timezone.now()
            obj.save(update_fields=["is_active", "deactivated_at"])
            return
        saved = bank_account_add(
            driver_id=obj.driver_id,
            holder_name=obj.holder_name,
            routing_number=obj.routing_number,
            account_number=form.cleaned_data["account_number"],
            account_type=obj.account_type or BankAccountType.CHECKING,
            created_by_id=request.user.pk,
        )
        obj.pk = saved.pk
        obj.account_number = saved.account_number


@admin.register(DriverStripeAccount)
class DriverStripeAccountAdmin(admin.ModelAdmin):
    list_display = ["driver", "account_id", "created_at"]
    search_fields = ["driver__phone", "driver__name", "account_id"]
    readonly_fields = ["driver", "account_id", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Payout)
class PayoutAdmin(admin.ModelAdmin):
    list_display = [
        "week_start",
        "driver",
        "status",
        "method",
        "amount",
        "destination",
        "attempts",
        "last_error",
        "created_at",
    ]
    list_filter = ["status", "method", "week_start"]
    search_fields = ["driver__phone", "driver__name", "idempotency_key", "provider_reference", "batch"]
    ordering = ["-week_start", "driver_id"]
    actions = ["mark_paid", "mark_returned", "retry_now"]
    exclude = ["bank_account"]
    readonly_fields = [
        "id",
        "driver",
        "week_start",
        "cut_off",
        "status",
        "method",
        "amount",
        "payable_minor",
        "tips_minor",
        "currency",
        "destination",
        "idempotency_key",
        "ledger_key",
        "provider_reference",
        "batch",
        "batch_sequence",
        "attempts",
        "last_error",
        "errors",
        "next_attempt_at",
        "created_at",
        "submitted_at",
        "paid_at",
        "failed_at",
    ]

    @admin.display(description="Amount", ordering="amount_minor")
    def amount(self, obj: Payout) -> str:
        return money(obj.amount_minor, obj.currency)

    @admin.display(description="Ledger entry key")
    def ledger_key(self, obj: Payout) -> str:
        return obj.ledger_key

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def _each(self, request: HttpRequest, queryset: QuerySet[Payout], act: str) -> None:
        done = 0
        for payout in queryset:
            try:
                if act == "paid":
                    payout_mark_paid(payout_id=payout.id)
                elif act == "returned":
                    payout_mark_failed(payout_id=payout.id, reason=f"returned by the bank ({request.user})")
                elif payout_retry_now(payout_id=payout.id):
                    pass
                else:
                    raise DomainError(
                        _("payout %(id)s is not waiting for an answer") % {"id": payout.id},
                        code="not_retryable",
                    )
                done += 1
            except DomainError as error:
                self.message_user(request, f"{payout}: {error.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} payout(s) updated.", messages.SUCCESS)

    @admin.action(description="Mark paid (the bank settled them)")
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        self._each(request, queryset.filter(status=PayoutStatus.SUBMITTED), "paid")

    @admin.action(description="Mark returned by the bank (failed: the amount is payable again)")
    def mark_returned(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        self._each(request, queryset, "returned")

    @admin.action(description="Retry now (same idempotency key)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        self._each(request, queryset, "retry")
