"""The Django middleware through Django's own request handling (its test client)."""

from __future__ import annotations

import django
from django.conf import settings

from tollgate import WindowQuota
from tollgate.middleware import Policy, RateLimiter, api_key

HOUR = 3600 * 10**9
LIMITER = RateLimiter(
    routes=[("/orders", Policy(WindowQuota(3, HOUR), key=api_key(), name="orders"))]
)

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["tollgate.middleware.django.RateLimitMiddleware"],
        TOLLGATE_LIMITER=f"{__name__}.LIMITER",
        SECRET_KEY="test only",
    )
    django.setup()

from django.http import JsonResponse
from django.test import Client
from django.urls import path


def orders(request):
    return JsonResponse({"used": request.tollgate.decision.used})


def free(request):
    return JsonResponse({"tollgate": request.tollgate.policy is None})


urlpatterns = [path("orders", orders), path("free", free)]


def test_django_middleware_counts_headers_and_exemptions() -> None:
    client = Client()
    rs = [client.get("/orders", HTTP_X_API_KEY="d") for _ in range(5)]
    assert [r.status_code for r in rs] == [200, 200, 200, 429, 429]
    assert [r.json().get("used") for r in rs[:3]] == [1, 2, 3]
    assert rs[0]["RateLimit-Policy"] == '"orders";q=3;w=3600'
    assert rs[2]["RateLimit"].startswith('"orders";r=0;t=')
    assert rs[3].json()["error"] == "rate_limited"
    assert int(rs[3]["Retry-After"]) >= 1
    assert client.get("/orders", HTTP_X_API_KEY="e").status_code == 200  # another key
    assert client.get("/orders").status_code == 400
    free = client.get("/free")
    assert free.status_code == 200 and free.json() == {"tollgate": True}
    assert not free.has_header("RateLimit")
