from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from backend.accounts import services
from backend.accounts.models import DriverProfile, DriverStatus, User, Vehicle


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["date_joined"]
    list_display = ["phone", "name", "is_rider", "is_driver", "is_staff", "date_joined"]
    search_fields = ["phone", "name"]
    list_filter = ["is_rider", "is_driver", "is_staff", "is_active"]
    fieldsets = [
        (None, {"fields": ["phone", "password"]}),
        ("Person", {"fields": ["name"]}),
        ("Roles", {"fields": ["is_rider", "is_driver", "is_staff", "is_superuser", "is_active"]}),
        ("Permissions", {"fields": ["groups", "user_permissions"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["phone", "name", "password1", "password2"]})]


class VehicleInline(admin.TabularInline):
    model = Vehicle
    extra = 0


@admin.register(DriverProfile)
class DriverProfileAdmin(admin.ModelAdmin):
    """Status is read-only here: approval goes through `driver_approve` (the same service as the staff API),
    which records who approved and when."""

    list_display = ["user", "license_number", "status", "approved_at", "approved_by"]
    list_filter = ["status"]
    search_fields = ["user__phone", "user__name", "license_number"]
    inlines = [VehicleInline]
    readonly_fields = ["status", "approved_at", "approved_by"]
    actions = ["approve_drivers"]

    @admin.action(description="Approve the selected drivers", permissions=["change"])
    def approve_drivers(self, request: HttpRequest, queryset: QuerySet[DriverProfile]) -> None:
        approved = 0
        for driver_id in queryset.exclude(status=DriverStatus.APPROVED).values_list("user_id", flat=True):
            services.driver_approve(driver_id=driver_id, approved_by=request.user)
            approved += 1
        self.message_user(request, f"{approved} driver(s) approved.", messages.SUCCESS)
