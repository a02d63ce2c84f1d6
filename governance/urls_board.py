"""The board's web pages, mounted at /board/ by backend/urls.py."""

from django.urls import path

from governance import views_board as views

app_name = "board"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.sign_in, name="login"),
    path("logout/", views.sign_out, name="logout"),
    path("proposals/new/", views.proposal_new, name="proposal_new"),
    path("proposals/<uuid:proposal_id>/", views.proposal_detail, name="proposal"),
    path("proposals/<uuid:proposal_id>/vote", views.proposal_vote, name="proposal_vote"),
    path("preview", views.preview, name="preview"),
    path("audit/", views.audit, name="audit"),
]
