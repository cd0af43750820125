"""Sends the lines read from stdin to medic with a real client library, one log record each.

    send_logs.py loki <push url>     python-logging-loki (PyPI), Loki's JSON push
    send_logs.py otel <logs url>     the OpenTelemetry Python SDK's OTLP/HTTP protobuf exporter

Lines are "<level> <message>"; the level chooses the logging call. Any failure to deliver
exits non-zero.
"""

import logging
import sys


def loki_logger(url):
    try:
        import logging_loki
    except ImportError as e:
        sys.exit(f"python-logging-loki is missing (pip install python-logging-loki): {e}")

    class Strict(logging_loki.LokiHandler):
        def handleError(self, record):
            raise  # a failed push must fail the test, not print and go on

    handler = Strict(url=url, tags={"app": "pyloki", "env": "test"}, version="1")
    log = logging.getLogger("shop.checkout")
    log.addHandler(handler)
    return log, lambda: None


def otel_logger(url):
    try:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
        from opentelemetry.sdk.resources import Resource
    except ImportError as e:
        sys.exit(
            "the OpenTelemetry SDK is missing (pip install opentelemetry-sdk "
            f"opentelemetry-exporter-otlp-proto-http): {e}"
        )

    resource = Resource.create({"service.name": "checkout", "deployment.environment": "test", "host.name": "web-7"})
    provider = LoggerProvider(resource=resource)
    exporter = OTLPLogExporter(endpoint=url, timeout=10)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = logging.getLogger("otel.checkout")
    log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    failures = []
    original = exporter.export

    def export(batch):
        result = original(batch)
        if result.name != "SUCCESS":
            failures.append(result)
        return result

    exporter.export = export

    def finish():
        provider.shutdown()
        if failures:
            sys.exit(f"{len(failures)} OTLP exports failed")

    return log, finish


def main():
    kind, url = sys.argv[1], sys.argv[2]
    log, finish = {"loki": loki_logger, "otel": otel_logger}[kind](url)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    for line in sys.stdin.read().splitlines():
        level, _, message = line.partition(" ")
        getattr(log, level)(message)
    finish()


if __name__ == "__main__":
    main()
