//! Reading the stored file: opening it in its encoding, analysing the header and delimiter, and
//! reading rows in batches.

use super::*;

/// One data row: its line number in the file and its decoded cells.
pub(super) struct Row {
    pub(super) line: u64,
    pub(super) cells: Vec<String>,
}

pub(super) struct Analysis {
    pub(super) encoding: Encoding,
    pub(super) delimiter: u8,
    pub(super) headers: Vec<String>,
    pub(super) rows_total: u64,
}

pub(super) fn io_failure(e: impl std::fmt::Display) -> String {
    tracing::warn!(error = %e, "lead import: file read failed");
    "Não foi possível ler o arquivo enviado.".to_string()
}

/// A CSV reader over the file, past a UTF-8 BOM. Line numbers still count from the file's start.
pub(super) fn open_reader(
    path: &Path,
    delimiter: u8,
) -> std::io::Result<csv::Reader<BufReader<File>>> {
    let mut f = File::open(path)?;
    let mut start = [0u8; 3];
    let mut n = 0;
    while n < 3 {
        let k = f.read(&mut start[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    if !(n == 3 && start == *BOM) {
        f.seek(SeekFrom::Start(0))?;
    }
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(BufReader::with_capacity(64 * 1024, f)))
}

/// The streaming pass before the import: separator (from the header line), encoding (UTF-8 if every
/// byte is, else Windows-1252), the header, and the number of data rows.
pub(super) fn analyse(
    path: &Path,
    encoding: Option<Encoding>,
    delimiter: Option<u8>,
) -> Result<Analysis, String> {
    let delimiter = match delimiter {
        Some(d) => d,
        None => {
            let mut head = Vec::with_capacity(SNIFF_BYTES);
            File::open(path)
                .and_then(|f| f.take(SNIFF_BYTES as u64).read_to_end(&mut head))
                .map_err(io_failure)?;
            detect_delimiter(first_content_line(strip_bom(&head)))
        }
    };
    let mut rdr = open_reader(path, delimiter).map_err(io_failure)?;
    let mut rec = csv::ByteRecord::new();
    let mut header: Option<csv::ByteRecord> = None;
    let (mut utf8, mut rows) = (true, 0u64);
    while rdr.read_byte_record(&mut rec).map_err(io_failure)? {
        if utf8 && encoding.is_none() && std::str::from_utf8(rec.as_slice()).is_err() {
            utf8 = false;
        }
        if is_blank(&rec) {
            continue;
        }
        if header.is_none() {
            header = Some(rec.clone());
        } else {
            rows += 1;
        }
    }
    let Some(header) = header else {
        return Err("O arquivo não tem linha de cabeçalho.".into());
    };
    let encoding = encoding.unwrap_or(if utf8 {
        Encoding::Utf8
    } else {
        Encoding::Windows1252
    });
    let headers = header
        .iter()
        // Without U+0000, like the names checked at upload (docs/api.md, "Text").
        .map(|f| encoding.decode(f).replace('\0', "").trim().to_string())
        .collect();
    Ok(Analysis {
        encoding,
        delimiter,
        headers,
        rows_total: rows,
    })
}

/// Reads data rows after the first `skip` ones and sends them in batches; stops when the receiver
/// is gone. Runs on a blocking thread.
pub(super) fn read_rows(
    path: PathBuf,
    encoding: Encoding,
    delimiter: u8,
    skip: u64,
    tx: mpsc::Sender<Result<Vec<Row>, String>>,
) {
    let mut rdr = match open_reader(&path, delimiter) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Err(io_failure(e)));
            return;
        }
    };
    let mut rec = csv::ByteRecord::new();
    let (mut header_seen, mut index) = (false, 0u64);
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = tx.blocking_send(Err(io_failure(e)));
                return;
            }
        }
        if is_blank(&rec) {
            continue;
        }
        if !header_seen {
            header_seen = true;
            continue;
        }
        index += 1;
        if index <= skip {
            continue;
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        batch.push(Row {
            line,
            cells: rec.iter().map(|f| encoding.decode(f)).collect(),
        });
        if batch.len() == BATCH_SIZE
            && tx
                .blocking_send(Ok(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH_SIZE),
                )))
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}
