"""Custom collectors: the service's state as Prometheus metric families.

They read what the services already keep (counters updated per batch of
frames, client sets, the link state) when Prometheus scrapes; nothing here runs
on the data path."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from icoapi import __version__
from icoapi.metrics.sources import (
    BlockingReadings,
    MetricSources,
    UploadSnapshot,
    disk_reserve_bytes,
)
from icoapi.system.schemas import LinkState


def icotronic_version() -> str:
    try:
        return metadata.version("icotronic")
    except metadata.PackageNotFoundError:
        return "unknown"


class BuildInfoCollector(Collector):
    def __init__(self) -> None:
        self.family = GaugeMetricFamily(
            "icoapi_build_info",
            "The running icoapi and icotronic versions (always 1).",
            labels=["version", "icotronic_version"],
        )
        self.family.add_metric([__version__, icotronic_version()], 1)

    def collect(self) -> Iterator[Metric]:
        yield self.family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


class ServiceCollector(Collector):
    """Measurement, clients, link, uploads and disk of one running service.

    ``readings`` holds what :func:`~icoapi.metrics.sources.read_blocking` read
    in a thread just before the scrape; the rest is read from memory here."""

    def __init__(self, sources: MetricSources) -> None:
        self.sources = sources
        self.readings = BlockingReadings(uploads=None, disk_free_bytes=None)

    def collect(self) -> Iterator[Metric]:
        yield from self._measurement()
        yield from self._clients()
        yield from self._link()
        yield from self._disk()
        if self.readings.uploads is not None:
            yield from self._uploads(self.readings.uploads)

    def _measurement(self) -> Iterator[Metric]:
        measurement = self.sources.measurement
        frames, lost, dataloss = measurement.frame_counts()
        yield _gauge(
            "icoapi_measurement_running",
            "1 while a measurement runs (from its start until its stream ends).",
            1 if measurement.status().running else 0,
        )
        yield _counter(
            "icoapi_frames_total",
            "Data frames received from sensor devices over the service's life (updated per batch).",
            frames,
        )
        yield _counter(
            "icoapi_frames_lost_total",
            "Data frames lost on the way from the device over the service's life.",
            lost,
        )
        yield _gauge(
            "icoapi_measurement_dataloss_ratio",
            "Lost / (lost + received) frames of the current measurement (0 without one).",
            dataloss or 0.0,
        )

    def _clients(self) -> Iterator[Metric]:
        stream = self.sources.measurement.stream_clients
        yield _gauge(
            "icoapi_stream_clients", "Clients of the live measurement stream.", len(stream)
        )
        yield _counter(
            "icoapi_stream_messages_dropped",
            "Live-stream messages slow clients lost (their queue was full).",
            stream.dropped,
        )
        yield _gauge(
            "icoapi_state_clients",
            "Clients of the /state WebSocket.",
            len(self.sources.state.clients),
        )

    def _link(self) -> Iterator[Metric]:
        system = self.sources.system
        yield _gauge(
            "icoapi_can_link_up", "1 while the CAN link is open.", 1 if system.can_ready else 0
        )
        yield _gauge(
            "icoapi_stu_connected",
            "1 while the STU is reachable (link_state stu_connected or sensor_connected).",
            1 if system.state in (LinkState.STU_CONNECTED, LinkState.SENSOR_CONNECTED) else 0,
        )
        yield _gauge(
            "icoapi_sensor_device_connected",
            "1 while a sensor device is connected.",
            1 if system.state is LinkState.SENSOR_CONNECTED else 0,
        )

    def _disk(self) -> Iterator[Metric]:
        if self.readings.disk_free_bytes is not None:
            yield _gauge(
                "icoapi_disk_free_bytes",
                "Free space of the volume holding the measurement files.",
                self.readings.disk_free_bytes,
            )
        reserve = disk_reserve_bytes(self.sources.settings)
        if reserve is not None:
            yield _gauge(
                "icoapi_disk_reserve_bytes",
                "Free space a measurement leaves on the volume (ICOAPI_DISK_RESERVE_BYTES).",
                reserve,
            )

    def _uploads(self, uploads: UploadSnapshot) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "icoapi_upload_jobs", "Jobs of the upload queue by state.", labels=["state"]
        )
        for state, count in uploads.jobs.items():
            jobs.add_metric([state], count)
        yield jobs
        yield _counter(
            "icoapi_upload_bytes",
            "Bytes of measurement files uploaded to the dataspace over the service's life.",
            uploads.uploaded_bytes,
        )
        yield _counter(
            "icoapi_upload_failures",
            "Upload attempts that failed over the service's life (retried ones included).",
            uploads.failed_attempts,
        )
        yield _gauge(
            "icoapi_dataspace_enabled",
            "1 when a dataspace is configured and enabled.",
            1 if uploads.enabled else 0,
        )
        yield _gauge(
            "icoapi_dataspace_healthy",
            "1 while the configured dataspace answers (0 when none is enabled).",
            1 if uploads.enabled and uploads.healthy else 0,
        )
