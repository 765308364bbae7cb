async def test_healthz(client):
    resp = await client.get("/healthz")
    assert resp.status == 200


async def test_signup_and_me(learner):
    resp = await learner.get("/api/users/me")
    assert resp.status == 200
    assert (await resp.json())["email"] == learner.email
