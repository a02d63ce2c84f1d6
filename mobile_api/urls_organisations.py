"""Routes of issue 16's organisations (docs/organisations.md, docs/api.md)."""

from django.urls import path

from mobile_api import views_organisations as views

_ORG = "organisations/<uuid:organisation_id>"

urlpatterns = [
    path("staff/organisations", views.StaffOrganisationsView.as_view(), name="staff-organisations"),
    path(
        "staff/organisations/<uuid:organisation_id>",
        views.StaffOrganisationView.as_view(),
        name="staff-organisation",
    ),
    path(
        "staff/organisations/<uuid:organisation_id>/trips",
        views.StaffOrganisationTripsView.as_view(),
        name="staff-organisation-trips",
    ),
    path(f"{_ORG}/members", views.OrganisationMembersView.as_view(), name="organisation-members"),
    path(
        f"{_ORG}/members/<uuid:user_id>", views.OrganisationMemberView.as_view(), name="organisation-member"
    ),
    path(f"{_ORG}/guests", views.OrganisationGuestsView.as_view(), name="organisation-guests"),
    path(f"{_ORG}/api-keys", views.OrganisationApiKeysView.as_view(), name="organisation-api-keys"),
    path(
        f"{_ORG}/api-keys/<uuid:key_id>/revoke",
        views.OrganisationApiKeyRevokeView.as_view(),
        name="organisation-api-key-revoke",
    ),
    path(f"{_ORG}/trips", views.OrganisationTripsView.as_view(), name="organisation-trips"),
    path(f"{_ORG}/trips/<uuid:trip_id>", views.OrganisationTripView.as_view(), name="organisation-trip"),
    path(
        f"{_ORG}/trips/<uuid:trip_id>/cancel",
        views.OrganisationTripCancelView.as_view(),
        name="organisation-trip-cancel",
    ),
    path("me/organisations", views.MyOrganisationsView.as_view(), name="me-organisations"),
    path(
        "me/organisations/<uuid:organisation_id>/accept",
        views.MyOrganisationAcceptView.as_view(),
        name="me-organisation-accept",
    ),
    path(
        "me/organisations/<uuid:organisation_id>/decline",
        views.MyOrganisationDeclineView.as_view(),
        name="me-organisation-decline",
    ),
    path(
        "me/organisations/<uuid:organisation_id>/guest/accept",
        views.MyOrganisationGuestAcceptView.as_view(),
        name="me-organisation-guest-accept",
    ),
    path(
        "me/organisations/<uuid:organisation_id>/guest/decline",
        views.MyOrganisationGuestDeclineView.as_view(),
        name="me-organisation-guest-decline",
    ),
    # The signed token is the credential (a plain view, not an API operation; docs/organisations.md).
    path("guest/trips/<str:token>", views.GuestTripView.as_view(), name="guest-trip"),
]
