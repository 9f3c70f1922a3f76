"""A small framework for RabbitMQ workers: see workers/README.md."""

from workers.framework.app import WorkerApp
from workers.framework.delivery import Delivery
from workers.framework.failures import DeadLetter
from workers.framework.idempotency import IdempotencyGuard, MemoryIdempotency, RedisIdempotency
from workers.framework.spec import BatchSpec, RetryPolicy
from workers.framework.validation import SchemaUnavailableError, schema_validator

__all__ = [
    "BatchSpec",
    "DeadLetter",
    "Delivery",
    "IdempotencyGuard",
    "MemoryIdempotency",
    "RedisIdempotency",
    "RetryPolicy",
    "SchemaUnavailableError",
    "WorkerApp",
    "schema_validator",
]
