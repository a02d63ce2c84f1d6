"""The members' portal routes, mounted at /members/ by backend/urls.py (docs/portal.md).

One block per page family; other areas (notification preferences) append their own block at the end.
"""

from django.urls import path

from mobile_api.members import views, views_push

app_name = "members"

urlpatterns = [
    path("", views.home, name="home"),
    # Proposals and their discussion
    path("proposals/", views.proposal_list, name="proposals"),
    path("proposals/<uuid:proposal_id>/", views.proposal_detail, name="proposal"),
    path("proposals/<uuid:proposal_id>/vote", views.proposal_vote, name="proposal_vote"),
    path("proposals/<uuid:proposal_id>/comments", views.comment_add, name="comment_add"),
    path("comments/<uuid:comment_id>/edit", views.comment_edit, name="comment_edit"),
    path("comments/<uuid:comment_id>/hide", views.comment_hide, name="comment_hide"),
    # Elections
    path("elections/", views.election_list, name="elections"),
    path("elections/<uuid:election_id>/", views.election_detail, name="election"),
    path("elections/<uuid:election_id>/stand", views.election_stand, name="election_stand"),
    path("elections/<uuid:election_id>/withdraw", views.election_withdraw, name="election_withdraw"),
    path("elections/<uuid:election_id>/ballot", views.election_ballot, name="election_ballot"),
    # My membership, my work, the co-op's numbers
    path("membership/", views.membership, name="membership"),
    path("work/", views.work, name="work"),
    path("numbers/", views.numbers, name="numbers"),
    # Notifications: the settings page, this browser's Web Push, the service worker (views_push.py)
    path("notifications/", views_push.notification_settings, name="notifications"),
    path("push/key", views_push.push_key, name="push_key"),
    path("push/subscription", views_push.push_subscription, name="push_subscription"),
    path("sw.js", views_push.service_worker, name="service_worker"),
]
