from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from backend.accounts.models import DriverProfile, User, Vehicle


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
    list_display = ["user", "license_number", "status", "approved_at"]
    list_filter = ["status"]
    search_fields = ["user__phone", "user__name", "license_number"]
    inlines = [VehicleInline]
    readonly_fields = ["approved_at", "approved_by"]
