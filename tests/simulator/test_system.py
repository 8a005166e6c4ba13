"""STU and sensor device requests through the real icotronic library."""

from __future__ import annotations

import asyncio
import threading

import pytest
from icotronic.can import SensorConfiguration
from icotronic.can.error import UnsupportedFeatureException
from icotronic.can.node.sensor import SensorNode, Times
from icotronic.can.node.sth import STH
from icotronic.can.node.stu import STU
from netaddr import EUI

from icoapi.simulator import DeviceConfig, Simulator, SimulatorConfig
from icoapi.simulator.protocol import visible_text

from .helpers import CONNECT_DELAY, SCAN_DELAY


async def test_stu_identity(stu: STU, simulator: Simulator) -> None:
    state = await stu.get_state()
    assert repr(state) == "Get State, Location: Application, State: Operating"
    assert await stu.get_name() == simulator.config.stu_name
    assert await stu.get_mac_address() == EUI(simulator.config.stu_mac)
    assert (await stu.get_firmware_version()).major == 2
    assert await stu.get_firmware_release_name() == "Valerie"
    await stu.reset()


async def test_scan_finds_every_device(stu: STU, simulator: Simulator) -> None:
    nodes = await stu.collect_sensor_nodes()
    found = {(node.name, node.mac_address, node.rssi) for node in nodes}
    expected = {
        (visible_text(device.name), EUI(device.mac), device.rssi)
        for device in simulator.config.devices
    }
    assert found == expected
    assert sorted(node.sensor_node_number for node in nodes) == [0, 1, 2]


@pytest.mark.parametrize("index", [0, 2])
async def test_connect_by_mac(stu: STU, simulator: Simulator, index: int) -> None:
    config = simulator.config.devices[index]
    async with stu.connect_sensor_node(EUI(config.mac), STH) as node:
        assert simulator.connected_device is simulator.devices[index]
        assert await node.get_mac_address() == EUI(config.mac)
        assert await node.get_name() == visible_text(config.name)
        assert await node.get_rssi() == config.rssi
        assert await stu.is_connected()
        # A connected device no longer advertises.
        assert len(await stu.get_sensor_nodes()) == len(simulator.devices) - 1
    assert simulator.connected_device is None
    assert not await stu.is_connected()


async def test_connect_by_name(stu: STU, simulator: Simulator) -> None:
    name = visible_text(simulator.devices[1].name)
    async with stu.connect_sensor_node(name) as node:
        assert await node.get_name() == name
        assert simulator.connected_device is simulator.devices[1]


async def test_rename_survives_reconnect(stu: STU, simulator: Simulator) -> None:
    mac = EUI(simulator.devices[0].config.mac)
    async with stu.connect_sensor_node(mac) as node:
        await node.set_name("Renamed")
        assert await node.get_name() == "Renamed"
    async with stu.connect_sensor_node(mac) as node:
        assert await node.get_name() == "Renamed"
        assert await node.eeprom.read_name() == "Renamed"
    assert simulator.devices[0].name == "Renamed"
    names = {node.name for node in await stu.collect_sensor_nodes()}
    assert "Renamed" in names


ADC_SETTINGS = [
    {"reference_voltage": 3.3, "prescaler": 2, "acquisition_time": 8, "oversampling_rate": 64},
    {"reference_voltage": 1.8, "prescaler": 2, "acquisition_time": 8, "oversampling_rate": 128},
    {"reference_voltage": 5.0, "prescaler": 4, "acquisition_time": 16, "oversampling_rate": 256},
    {"reference_voltage": 1.25, "prescaler": 1, "acquisition_time": 3, "oversampling_rate": 4096},
    # Not oversampling 1 or acquisition time 1: both encode as byte 0, which the
    # library's ADCConfiguration reads back as "unset" (64 and 8).
    {"reference_voltage": 6.6, "prescaler": 127, "acquisition_time": 256, "oversampling_rate": 2},
]


async def test_adc_configuration_round_trip(sth: STH, simulator: Simulator) -> None:
    device = simulator.devices[0]
    for settings in ADC_SETTINGS:
        await sth.set_adc_configuration(**settings)
        adc = await sth.get_adc_configuration()
        assert dict(adc) == pytest.approx(settings)
        assert adc.sample_rate() == pytest.approx(device.sample_rate())
        assert device.reference_voltage == pytest.approx(settings["reference_voltage"])


async def test_sensor_configuration(sth: STH, simulator: Simulator) -> None:
    configuration = await sth.get_sensor_configuration()
    assert (configuration.first, configuration.second, configuration.third) == (1, 2, 3)
    await sth.set_sensor_configuration(SensorConfiguration(5, 0, 10))
    configuration = await sth.get_sensor_configuration()
    assert (configuration.first, configuration.second, configuration.third) == (5, 2, 10)


async def test_unsupported_sensor_number(sth: STH, simulator: Simulator) -> None:
    available = simulator.devices[0].available_sensors
    with pytest.raises(UnsupportedFeatureException):
        await sth.set_sensor_configuration(SensorConfiguration(available + 1, 0, 0))
    configuration = await sth.get_sensor_configuration()
    assert configuration.first == 1  # unchanged


LEGACY = SimulatorConfig(
    devices=[DeviceConfig(name="Legacy", mac="08-6B-D7-01-DE-90", supports_channel_mapping=False)],
    scan_delay=SCAN_DELAY,
    connect_delay=CONNECT_DELAY,
)


@pytest.mark.parametrize("sim_config", [LEGACY], indirect=True)
async def test_device_without_channel_mapping(sth: STH) -> None:
    with pytest.raises(UnsupportedFeatureException):
        await sth.get_sensor_configuration()
    with pytest.raises(UnsupportedFeatureException):
        await sth.set_sensor_configuration(SensorConfiguration(1, 2, 3))


async def test_supply_voltage(sth: STH, simulator: Simulator) -> None:
    voltage = await sth.get_supply_voltage()
    assert 3.7 <= voltage <= 4.2
    assert voltage == pytest.approx(simulator.devices[0].supply_voltage, abs=0.01)
    # The raw value follows Vref, the converted voltage does not.
    await sth.set_adc_configuration(reference_voltage=5.0)
    assert await sth.get_supply_voltage() == pytest.approx(voltage, abs=0.01)


async def test_energy_modes(sth: STH) -> None:
    reduced = await sth.get_energy_mode_reduced()
    assert (reduced.sleep, reduced.advertisement) == (300_000, 1250)
    await sth.set_energy_mode_reduced(Times(sleep=60_000, advertisement=2000))
    reduced = await sth.get_energy_mode_reduced()
    assert (reduced.sleep, reduced.advertisement) == (60_000, 2000)
    assert await sth.eeprom.read_sleep_time_1() == 60_000
    await sth.set_energy_mode_lowest(Times(sleep=1_000_000, advertisement=5000))
    lowest = await sth.get_energy_mode_lowest()
    assert (lowest.sleep, lowest.advertisement) == (1_000_000, 5000)


async def test_product_data_and_eeprom(sth: STH, stu: STU, simulator: Simulator) -> None:
    assert await sth.get_serial_number() == simulator.devices[0].config.serial_number
    assert (await sth.get_firmware_version()).major == 3
    assert len(await sth.get_oem_data()) == 64
    await sth.eeprom.write_serial_number("NEW-SERIAL")
    assert await sth.get_serial_number() == "NEW-SERIAL"
    await stu.eeprom.write_batch_number(1234)
    assert await stu.eeprom.read_batch_number() == 1234
    assert await stu.get_product_name() == visible_text("ICOtronic STU (simulated)")


async def test_self_test_shifts_voltage(sth: STH, simulator: Simulator) -> None:
    signal = simulator.devices[0].signals[1]
    signal.amplitude = signal.noise = 0.0
    before = await sth.get_acceleration_voltage("x", 3.3)
    await sth.activate_acceleration_self_test("x")
    during = await sth.get_acceleration_voltage("x", 3.3)
    await sth.deactivate_acceleration_self_test("x")
    after = await sth.get_acceleration_voltage("x", 3.3)
    shift = simulator.devices[0].SELF_TEST_VOLTS
    assert during - before == pytest.approx(shift, abs=0.01)
    assert after == pytest.approx(before, abs=0.01)


async def test_single_data_set(sth: STH, simulator: Simulator) -> None:
    for signal in simulator.devices[0].signals.values():
        signal.amplitude = 0.0
        signal.noise = 0.0
    data = await sth.get_streaming_data_single()
    # 0 g on sensor 1 (0.33..2.97 V) is 1.65 V, i.e. half of Vref 3.3 V.
    assert data.values[0] == pytest.approx(32768, abs=2)
    assert len(data.values) == 3


async def test_connect_with_mac_address_subcommand(stu: STU, simulator: Simulator) -> None:
    """The low level connect by MAC (Bluetooth subcommand 18), used as the
    library's own example does: scan, then repeat the connect until connected."""
    device = simulator.devices[2]
    await stu.activate_bluetooth()
    # Like hardware, the STU connects only to a device its scan has found.
    assert EUI(device.config.mac) in {n.mac_address for n in await stu.collect_sensor_nodes()}
    deadline = asyncio.get_running_loop().time() + 5
    await stu.connect_with_mac_address(EUI(device.config.mac))
    while not await stu.is_connected():
        assert asyncio.get_running_loop().time() < deadline, "not connected in time"
        await asyncio.sleep(0.05)  # polling interval, like the library's own 0.1 s
        await stu.connect_with_mac_address(EUI(device.config.mac))
    node = SensorNode(stu.spu)
    assert await node.get_mac_address() == EUI(device.config.mac)
    await stu.deactivate_bluetooth()
    assert simulator.connected_device is None


def test_simulator_life_cycle() -> None:
    simulator = Simulator(SimulatorConfig.default(1))
    assert simulator.config.devices[0].name == "Tool-1"
    with simulator:
        assert any(thread.name == "icosim-rx" for thread in threading.enumerate())
    simulator.stop()  # idempotent
    assert not any(thread.name.startswith("icosim") for thread in threading.enumerate())
    with pytest.raises(RuntimeError):
        simulator.start()
