import pytest
from django.test import override_settings


@pytest.mark.django_db
def test_health_is_ok_when_postgis_and_redis_answer(api_client):
    response = api_client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_health_names_redis_when_it_is_down(api_client):
    # A real connection attempt to a port where no Redis listens.
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = api_client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "database": "ok", "redis": "down"}


@pytest.mark.django_db
def test_schema_is_openapi_3_and_lists_the_health_route(api_client):
    response = api_client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/health" in schema["paths"]


@pytest.mark.django_db
def test_docs_page_loads_its_assets_locally(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "https://" not in html.split("<body")[0]
    # The referenced bundle is really served by this process.
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


@pytest.mark.django_db
def test_unknown_route_answers_404_in_the_error_shape(client, api_client):
    for response in (client.get("/no/such/page"), api_client.get("/api/v1/no-such-route")):
        assert response.status_code == 404
        body = response.json()
        assert body["error"]["code"] == "not_found"
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["details"] == {}


@pytest.mark.django_db
def test_wrong_method_answers_405_in_the_error_shape(api_client):
    response = api_client.post("/api/v1/health", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
