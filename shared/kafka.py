"""Kafka clients configured the same way everywhere, and topic creation at start-up."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError
from aiokafka.protocol.group import LeaveGroupRequest
from aiokafka.protocol.metadata import MetadataRequest

from shared.settings import ServiceSettings

logger = logging.getLogger("kehu.kafka")


def new_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    # Idempotent producers fail against Tansu (no InitProducerId); ordering per partition is
    # kept by aiokafka sending one batch per partition at a time.
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"kehu-{settings.service_name}",
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=15_000,
        enable_idempotence=False,
    )


def new_consumer(
    settings: ServiceSettings, group_id: str, topics: Iterable[str]
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"kehu-{settings.service_name}",
        group_id=group_id,
        enable_auto_commit=False,  # offsets are committed only after the DB transaction
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        max_poll_interval_ms=300_000,
        # Tansu holds a join for about half the session timeout, so a short one makes
        # consumers (and so services) start and stop quickly.
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(1000, settings.kafka_session_timeout_ms // 3),
        request_timeout_ms=40_000,
    )


async def ensure_topics(settings: ServiceSettings, topics: Iterable[str]) -> None:
    """Create missing topics with the configured partition count."""
    wanted = sorted(set(topics))
    if not wanted:
        return
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            t, settings.kafka_topic_partitions, settings.kafka_replication_factor
                        )
                        for t in missing
                    ]
                )
                logger.info("created topics %s", ", ".join(missing))
            except TopicAlreadyExistsError:
                pass  # another replica won the race
    finally:
        await admin.close()


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer, leaving its group even in Tansu's first generation.

    Tansu numbers a group's first generation 0, which aiokafka reads as "never joined" and so
    skips LeaveGroup on stop; the next member would then wait out the session timeout.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is not None and coordinator.generation == 0 and coordinator.member_id:
        try:
            await coordinator._send_req(
                LeaveGroupRequest(coordinator.group_id, coordinator.member_id)
            )
        except Exception as exc:  # best effort, as aiokafka's own LeaveGroup is
            logger.info("LeaveGroup failed: %s", exc)
    await consumer.stop()


async def missing_topics(producer: AIOKafkaProducer, topics: Collection[str]) -> set[str]:
    """Which of these topics the broker does not have. Asks about these topics only (not the
    whole cluster's metadata, which every relay pass would decode) and without letting the
    broker create them, which would hide that they were lost."""
    client = producer.client
    node_id = client.get_random_node()
    if node_id is None:  # no broker known yet: the whole cluster's metadata finds one
        return set(topics) - set((await client.fetch_all_metadata()).topics())
    request = MetadataRequest(sorted(topics), allow_auto_topic_creation=False)
    response = await client.send(node_id, request)
    answered = {topic: error_code for error_code, topic, *_ in response.topics}
    unknown = UnknownTopicOrPartitionError.errno
    return {t for t in topics if answered.get(t, unknown) == unknown}
