"""`make dev`'s local stack, not a Lambda function: the whole product on 127.0.0.1 with no Docker and no
Stripe account (template.yaml does not deploy this folder)."""
