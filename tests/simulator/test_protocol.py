"""Pure protocol and signal helpers, cross-checked against the icotronic library."""

from __future__ import annotations

import numpy as np
import pytest
from icotronic.can.adc import ADCConfiguration
from icotronic.can.protocol.identifier import Identifier as LibraryIdentifier
from icotronic.can.streaming import StreamingConfiguration, StreamingFormat

from icoapi.simulator import expected_physical, raw_to_physical, sample_time
from icoapi.simulator.protocol import (
    SPU1,
    STH1,
    STREAM_DATA_ID,
    STU1,
    Block,
    Identifier,
    StreamFormat,
    acknowledgement_id,
    encode_identifier,
    parse_mac,
    sample_rate,
    visible_text,
)
from icoapi.simulator.signals import default_signals, volts_to_raw

COMMANDS = [
    ("System", "Reset"),
    ("System", "Get/Set State"),
    ("System", "Bluetooth"),
    ("Streaming", "Data"),
    ("Streaming", "Voltage"),
    ("Configuration", "Get/Set ADC Configuration"),
    ("Configuration", "Calibration Measurement"),
    ("EEPROM", "Read"),
    ("EEPROM", "Write"),
    ("Product Data", "OEM Free Use 8"),
]


@pytest.mark.parametrize(("block", "command"), COMMANDS)
@pytest.mark.parametrize("receiver", ["STU 1", "STH 1"])
def test_identifiers_match_library(block: str, command: str, receiver: str) -> None:
    request = LibraryIdentifier(
        block=block, block_command=command, sender="SPU 1", receiver=receiver, request=True
    )
    decoded = Identifier.decode(request.value)
    assert decoded.request
    assert decoded.sender == SPU1
    assert decoded.receiver == (STU1 if receiver == "STU 1" else STH1)
    assert decoded.encode() == request.value
    assert (
        encode_identifier(
            decoded.block, decoded.command, sender=SPU1, receiver=decoded.receiver, request=True
        )
        == request.value
    )
    assert acknowledgement_id(request.value) == request.acknowledge().value
    assert acknowledgement_id(request.value, error=True) == request.acknowledge(error=True).value


def test_reference_identifiers() -> None:
    assert STREAM_DATA_ID == 0x0100004F
    assert acknowledgement_id(0x0A0063C1, error=True) == 0x0A00504F
    assert Identifier.decode(0x0F8023C1).block == Block.PRODUCT_DATA


@pytest.mark.parametrize(
    "channels",
    [(True, False, False), (True, True, False), (True, True, True), (False, False, True)],
)
def test_stream_format_matches_library(channels: tuple[bool, bool, bool]) -> None:
    configuration = StreamingConfiguration(*channels)
    sets = 3 if configuration.enabled_channels() <= 1 else 1
    value = StreamingFormat(channels=configuration, streaming=True, sets=sets).value
    decoded = StreamFormat.decode(value)
    assert decoded.streaming
    assert decoded.channels == channels
    assert decoded.sets == sets


@pytest.mark.parametrize(
    ("prescaler", "acquisition", "oversampling"), [(2, 8, 64), (2, 8, 128), (5, 16, 256), (1, 3, 1)]
)
def test_sample_rate_matches_library(prescaler: int, acquisition: int, oversampling: int) -> None:
    adc = ADCConfiguration(
        prescaler=prescaler,
        acquisition_time=acquisition,
        oversampling_rate=oversampling,
        reference_voltage=3.3,
    )
    assert sample_rate(prescaler, acquisition, oversampling) == pytest.approx(adc.sample_rate())


def test_text_and_mac_helpers() -> None:
    assert visible_text("Tool 1") == "Tool1"
    assert visible_text("Tööl") == "Tl"
    assert parse_mac("08-6B-D7-01-DE-81") == parse_mac("08:6b:d7:01:de:81")
    with pytest.raises(ValueError):
        parse_mac("08-6B-D7")


def test_signal_conversion_round_trip() -> None:
    signal = default_signals()[1]
    signal.noise = 0.0
    t = sample_time(frame=10, sample=2, frame_rate=3174.6, samples_per_frame=3)
    physical = expected_physical(signal, t)
    raw = int(volts_to_raw(signal.to_volts(np.array([physical])), 3.3)[0])
    assert raw_to_physical(signal, raw, 3.3) == pytest.approx(physical, abs=0.004)
    # Out of range voltages clip like a real ADC.
    assert volts_to_raw(np.array([-1.0, 10.0]), 3.3).tolist() == [0, 65535]
