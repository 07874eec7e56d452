"""`make dev`: the whole product on 127.0.0.1 with no Docker and no Stripe account."""
