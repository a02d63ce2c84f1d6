import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 at Django's default work factor costs ~0.5 s per user; these tests are not about hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def service_area(db):
    from tests.mobile_api.builders import ensure_service_area

    return ensure_service_area()


@pytest.fixture
def idem():
    """A fresh Idempotency-Key header per call."""
    import uuid

    def make(key: str | None = None) -> dict:
        return {"HTTP_IDEMPOTENCY_KEY": key or str(uuid.uuid4())}

    return make
