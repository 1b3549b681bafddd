"""The OpenTelemetry-instrumented services of the OTLP end-to-end test (see README.md).

A checkout choreography written the way a team with OpenTelemetry and no Choreoscope writes it:
confluent-kafka clients wrapped by opentelemetry-instrumentation-confluent-kafka, spans exported
over OTLP. Records carry only what the instrumentation writes (`traceparent`); no Choreoscope or
CloudEvents headers.

    python services.py ROLE      # ROLE: topics, shop, payment, inventory, notification

    topics        creates PREFIX.orders, .payments, .stock, .emails (3 partitions; existing ones are fine)
    shop          (creates the topics too) produces N OrderCreated to PREFIX.orders, keys o-1..o-N
    payment       PREFIX.orders   -> PaymentConfirmed to PREFIX.payments
    inventory     PREFIX.payments -> StockReserved to PREFIX.stock; raises for orders in FAIL_ORDERS
    notification  PREFIX.payments -> EmailSent to PREFIX.emails (its own group: a fan-out)

Ground truth on stdout, one JSON line per handled message (per produced record for shop);
everything else on stderr.
"""

import json
import os
import signal
import sys
import time

import confluent_kafka
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from opentelemetry import trace
from opentelemetry.instrumentation.confluent_kafka import ConfluentKafkaInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

ROLES = ("topics", "shop", "payment", "inventory", "notification")
PARTITIONS = 3


def env(name, default=None):
    value = os.environ.get(name, "")
    return value if value != "" else default


def log(*parts):
    print(f"[{ROLE}]", *parts, file=sys.stderr, flush=True)


def emit(line):
    """One ground-truth line on stdout."""
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class OutOfStock(Exception):
    pass


# --- tracing -------------------------------------------------------------------------------------


class HeldSpans(SpanProcessor):
    """SPAN_EXPORT=late: keeps every ended span until release(), then hands them to `inner` (a
    BatchSpanProcessor), so that nothing leaves the process before the test says so."""

    def __init__(self, inner):
        self.inner = inner
        self.held = []
        self.released = False

    def on_start(self, span, parent_context=None):
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span):
        if self.released:
            self.inner.on_end(span)
        else:
            self.held.append(span)

    def release(self):
        self.released = True
        held, self.held = self.held, []
        for span in held:
            self.inner.on_end(span)

    def shutdown(self):
        self.release()
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def otlp_exporter():
    endpoint = env("OTLP_ENDPOINT")
    if endpoint is None:
        return None
    protocol = env("OTLP_PROTOCOL", "grpc")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # An http:// endpoint means a plaintext channel.
        return OTLPSpanExporter(endpoint=endpoint)
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint)  # http/protobuf, the full URL (…/v1/traces)
    raise SystemExit(f"OTLP_PROTOCOL must be grpc or http, not {protocol}")


def setup_tracing():
    provider = TracerProvider(resource=Resource.create({"service.name": ROLE}))
    exporter = otlp_exporter()
    if exporter is not None and SPAN_EXPORT == "soon":
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    elif exporter is not None:
        batch = BatchSpanProcessor(
            exporter,
            schedule_delay_millis=600_000,
            max_queue_size=1 << 20,
            max_export_batch_size=512,
        )
        provider.add_span_processor(HeldSpans(batch))  # released by provider.shutdown()
    if env("OTEL_DEBUG_CONSOLE") == "1":
        # One JSON object per line, on stderr (stdout is the ground truth).
        console = ConsoleSpanExporter(
            out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
        provider.add_span_processor(SimpleSpanProcessor(console))
    trace.set_tracer_provider(provider)
    # The instrumentation's documented way: instrument() before creating the clients replaces
    # confluent_kafka.Producer and .Consumer with instrumented subclasses.
    ConfluentKafkaInstrumentor().instrument(tracer_provider=provider)
    return provider


# --- Kafka ---------------------------------------------------------------------------------------


def client_config():
    return {"bootstrap.servers": BROKERS, "broker.address.family": "v4"}


def topic(name):
    return f"{PREFIX}.{name}"


def create_topics():
    admin = AdminClient(client_config())
    names = [topic(t) for t in ("orders", "payments", "stock", "emails")]
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in names],
        operation_timeout=10,
    )
    for name, future in futures.items():
        try:
            future.result()
            log("created topic", name)
        except KafkaException as e:
            if e.args[0].code() != e.args[0].TOPIC_ALREADY_EXISTS:
                raise
    # Wait until the cluster's metadata shows them all, with their partitions.
    deadline = time.monotonic() + 30
    while True:
        listed = admin.list_topics(timeout=10).topics
        if all(n in listed and len(listed[n].partitions) == PARTITIONS for n in names):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"topics not in the metadata after 30 s: {names}")
        time.sleep(0.2)


class Producing:
    """An instrumented producer and the positions its delivery reports gave."""

    def __init__(self):
        config = client_config()
        config.update({"acks": "all", "message.timeout.ms": 10000})
        # confluent_kafka.Producer, looked up now: the instrumented class instrument() put there.
        self.producer = confluent_kafka.Producer(config)
        self.delivered = []
        self.errors = []

    def _report(self, err, msg):
        if err is not None:
            self.errors.append(str(err))
        else:
            self.delivered.append(
                {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()}
            )

    def send(self, topic_name, key, payload):
        # The instrumentation starts a PRODUCER span "<topic> send" here, under the current
        # context, and injects its context (traceparent) into the record's headers.
        self.producer.produce(
            topic_name,
            json.dumps(payload).encode(),
            key=key.encode(),
            on_delivery=self._report,
        )

    def positions(self):
        """Waits for every delivery report and returns the positions since the last call."""
        remaining = self.producer.flush(15)
        if remaining or self.errors:
            raise RuntimeError(f"delivery failed: {remaining} undelivered, errors {self.errors}")
        positions, self.delivered = self.delivered, []
        return positions


def shop():
    create_topics()
    out = Producing()
    n = int(env("N", "10"))
    for i in range(1, n + 1):
        order = f"o-{i}"
        out.send(
            topic("orders"),
            order,
            {"type": "OrderCreated", "orderId": order, "amount": 10 * i, "currency": "EUR"},
        )
        for position in out.positions():
            emit(
                {
                    "service": ROLE,
                    "order": order,
                    "consumed": None,
                    "produced": [position],
                    "failed": False,
                    "error": None,
                }
            )


def handle_payment(tracer, out, order, event):
    # Produced directly under the instrumentation's CONSUMER span (no span of its own).
    out.send(topic("payments"), order, {"type": "PaymentConfirmed", "orderId": order})


def handle_inventory(tracer, out, order, event):
    with tracer.start_as_current_span("reserve-stock") as span:
        span.set_attribute("order.id", order)
        if order in FAIL_ORDERS:
            # Escapes the `with`: the SDK records it as an exception event and sets status ERROR.
            raise OutOfStock(f"no stock for {order}")
        out.send(topic("stock"), order, {"type": "StockReserved", "orderId": order})


def handle_notification(tracer, out, order, event):
    with tracer.start_as_current_span("send-email") as span:
        span.set_attribute("order.id", order)
        out.send(topic("emails"), order, {"type": "EmailSent", "orderId": order})


CONSUMERS = {
    "payment": ("orders", handle_payment),
    "inventory": ("payments", handle_inventory),
    "notification": ("payments", handle_notification),
}


def consume():
    source, handler = CONSUMERS[ROLE]
    tracer = trace.get_tracer(f"choreoscope-test.{ROLE}")
    out = Producing()
    config = client_config()
    config.update(
        {
            "group.id": f"{PREFIX}-{ROLE}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            # Topics created after the subscription are seen within 2 s.
            "topic.metadata.refresh.interval.ms": 2000,
        }
    )
    consumer = confluent_kafka.Consumer(config)  # the instrumented class, as for the producer
    consumer.subscribe([topic(source)])
    expect = int(env("EXPECT", "0")) or None
    deadline = time.monotonic() + float(env("DEADLINE_S", "60"))
    handled = 0
    while expect is None or handled < expect:
        if time.monotonic() > deadline:
            log(f"deadline reached after {handled} message(s) (expected {expect})")
            break
        # The instrumentation ends the previous message's CONSUMER span here, then (for a
        # message) starts "<topic> process" and makes it the current span until the next poll.
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            log("consumer error:", msg.error())
            continue
        consumed = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()}
        event = json.loads(msg.value())
        order = event.get("orderId")
        failed, error = False, None
        try:
            handler(tracer, out, order, event)
        except Exception as e:  # the handler's failure: logged, and the loop goes on
            failed, error = True, f"{type(e).__name__}: {e}"
            log(f"handling {order} ({event.get('type')}) failed: {error}")
        produced = out.positions()
        handled += 1
        emit(
            {
                "service": ROLE,
                "order": order,
                "consumed": consumed,
                "produced": produced,
                "failed": failed,
                "error": error,
            }
        )
    # Ends the last message's CONSUMER span (the instrumentation does it in close), commits.
    consumer.close()
    out.positions()


def main():
    global ROLE, BROKERS, PREFIX, FAIL_ORDERS, SPAN_EXPORT
    if len(sys.argv) != 2 or sys.argv[1] not in ROLES:
        print(f"usage: {sys.argv[0]} {{{','.join(ROLES)}}}", file=sys.stderr)
        return 2
    ROLE = sys.argv[1]
    BROKERS = env("BROKERS")
    PREFIX = env("PREFIX")
    if BROKERS is None or PREFIX is None:
        print("BROKERS and PREFIX must be set", file=sys.stderr)
        return 2
    SPAN_EXPORT = env("SPAN_EXPORT", "soon")
    if SPAN_EXPORT not in ("soon", "late"):
        print(f"SPAN_EXPORT must be soon or late, not {SPAN_EXPORT}", file=sys.stderr)
        return 2
    FAIL_ORDERS = {o.strip() for o in env("FAIL_ORDERS", "").split(",") if o.strip()}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if ROLE == "topics":
        create_topics()
        return 0
    provider = setup_tracing()
    try:
        if ROLE == "shop":
            shop()
        else:
            consume()
    finally:
        if SPAN_EXPORT == "late":
            log("work done; waiting for a line on stdin (or EOF) before exporting the spans")
            sys.stdin.readline()
        provider.shutdown()  # exports what is left (late: everything), in batches of 512
        log("tracer provider shut down, exiting")
    return 0


ROLE = "?"
BROKERS = PREFIX = None
SPAN_EXPORT = "soon"
FAIL_ORDERS = set()

if __name__ == "__main__":
    sys.exit(main())
