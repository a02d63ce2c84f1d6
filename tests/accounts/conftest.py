import pytest


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
