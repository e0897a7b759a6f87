//! The `devices` table: the inventory at the end of a run, one row per
//! device. Columns, in order:
//!
//! | column | type | |
//! |---|---|---|
//! | `mac` | string | the MAC (`02:77:00:00:00:0a`), or its pseudonym; joins `windows.device` |
//! | `vendor` | string, null | from the IEEE OUI registry |
//! | `ips` | list of string | its own addresses, or their pseudonyms |
//! | `names` | list of string | `source=name` (`mqtt_client_id=temp1`); the name, or its pseudonym |
//! | `roles` | list of string | `mqtt-broker`, `http-client`, `gateway`, `scanner-like`, ... |
//! | `protocols` | list of string | application protocols its flows spoke |
//! | `zone` | string, null | the configured zone of its address |
//! | `first_seen`, `last_seen` | timestamp (µs, UTC) | |
//! | `packets_out`, `packets_in`, `bytes_out`, `bytes_in` | int64 | |
//!
//! The file's `date=` partition is the UTC date of the latest `last_seen`.

use std::path::PathBuf;

use polars::prelude::{
    Column, DataFrame, DataType, Int64Chunked, IntoColumn, ListBuilderTrait,
    ListStringChunkedBuilder, NewChunkedArray, Schema, StringChunked,
};
use serde::Serialize;

use super::DatasetError;
use super::layout::{PartFile, SensorName, Table, date_of, partition_dir, stamp_of};
use super::pseudonym::Pseudonymizer;
use super::windows::{micros, timestamp_column, timestamp_type};
use crate::device::inventory::{Device, Inventory, MacText};

/// The column types of the table.
pub fn schema() -> Schema {
    let list = || DataType::List(Box::new(DataType::String));
    Schema::from_iter([
        ("mac".into(), DataType::String),
        ("vendor".into(), DataType::String),
        ("ips".into(), list()),
        ("names".into(), list()),
        ("roles".into(), list()),
        ("protocols".into(), list()),
        ("zone".into(), DataType::String),
        ("first_seen".into(), timestamp_type()),
        ("last_seen".into(), timestamp_type()),
        ("packets_out".into(), DataType::Int64),
        ("packets_in".into(), DataType::Int64),
        ("bytes_out".into(), DataType::Int64),
        ("bytes_in".into(), DataType::Int64),
    ])
}

/// The serde name of a value (`NameSource::MqttClientId` → `mqtt_client_id`).
fn serde_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn list_column<'a>(
    name: &str,
    devices: &'a [&Device],
    values: impl Fn(&'a Device) -> Vec<String>,
) -> Column {
    let mut builder = ListStringChunkedBuilder::new(name.into(), devices.len(), devices.len() * 2);
    for d in devices {
        let v = values(d);
        builder.append_values_iter(v.iter().map(String::as_str));
    }
    builder.finish().into_column()
}

fn count_column(name: &str, devices: &[&Device], value: impl Fn(&Device) -> u64) -> Column {
    let values = devices
        .iter()
        .map(|d| i64::try_from(value(d)).unwrap_or(i64::MAX))
        .collect();
    Int64Chunked::from_vec(name.into(), values).into_column()
}

/// The inventory as a frame, with pseudonyms when `pseudonyms` is given.
pub fn frame(
    inventory: &Inventory,
    pseudonyms: Option<&Pseudonymizer>,
) -> Result<DataFrame, polars::error::PolarsError> {
    let devices = inventory.sorted();
    let mac = |d: &Device| match pseudonyms {
        Some(p) => p.mac(d.mac),
        None => MacText(d.mac).to_string(),
    };
    let columns = vec![
        StringChunked::from_iter_values("mac".into(), devices.iter().map(|d| mac(d))).into_column(),
        StringChunked::from_iter_options("vendor".into(), devices.iter().map(|d| d.vendor))
            .into_column(),
        list_column("ips", &devices, |d| {
            d.ips
                .iter()
                .map(|s| match pseudonyms {
                    Some(p) => p.ip(s.ip),
                    None => s.ip.to_string(),
                })
                .collect()
        }),
        list_column("names", &devices, |d| {
            d.names
                .iter()
                .map(|(source, name)| {
                    let name = match pseudonyms {
                        Some(p) => p.name(name),
                        None => name.clone(),
                    };
                    format!("{}={name}", serde_name(source))
                })
                .collect()
        }),
        list_column("roles", &devices, |d| {
            d.roles().map(|r| r.name().to_string()).collect()
        }),
        list_column("protocols", &devices, |d| {
            d.protocols.iter().map(|(p, _)| p.to_string()).collect()
        }),
        StringChunked::from_iter_options("zone".into(), devices.iter().map(|d| d.zone.as_deref()))
            .into_column(),
        timestamp_column(
            "first_seen",
            devices.iter().map(|d| micros(d.first_seen)).collect(),
        ),
        timestamp_column(
            "last_seen",
            devices.iter().map(|d| micros(d.last_seen)).collect(),
        ),
        count_column("packets_out", &devices, |d| d.packets_out),
        count_column("packets_in", &devices, |d| d.packets_in),
        count_column("bytes_out", &devices, |d| d.bytes_out),
        count_column("bytes_in", &devices, |d| d.bytes_in),
    ];
    DataFrame::new(devices.len(), columns)
}

/// Writes the inventory as one file of the `devices` table; None when it
/// is empty.
pub fn write_devices(
    root: &std::path::Path,
    sensor: &SensorName,
    inventory: &Inventory,
    pseudonyms: Option<&Pseudonymizer>,
) -> Result<Option<PathBuf>, DatasetError> {
    let Some(last) = inventory.iter().map(|d| d.last_seen).max() else {
        return Ok(None);
    };
    let dir = partition_dir(root, Table::Devices, sensor, &date_of(last));
    let mut file = PartFile::create(&dir, Table::Devices, &stamp_of(last), &schema())?;
    let df = match frame(inventory, pseudonyms) {
        Ok(df) => df,
        Err(source) => {
            let path = file.temp_path().to_path_buf();
            file.abandon();
            return Err(DatasetError::Parquet { path, source });
        }
    };
    if let Err(e) = file.write(&df) {
        file.abandon();
        return Err(e);
    }
    file.finish().map(Some)
}
