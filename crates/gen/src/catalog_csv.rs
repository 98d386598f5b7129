//! The generated catalog as a CSV in the format of docs/reference.md §2
//! (`video_id,title,genre,kind,launch_date`, header row), as `playsource catalog load` reads it.

use std::io::Write;
use std::path::Path;

use playsource_domain::catalog::CSV_COLUMNS;
use playsource_domain::VideoMeta;

use crate::error::Error;

/// Writes `catalog` as CSV to `out`.
pub fn write_csv<W: Write>(catalog: &[VideoMeta], out: W) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    for v in catalog {
        w.write_record([
            v.video_id.0.to_string().as_str(),
            v.title.as_str(),
            v.genre.as_str(),
            v.kind.as_str(),
            v.launch_date.to_string().as_str(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Writes `catalog` as CSV to the file `path` (replacing it).
pub fn write_csv_file(catalog: &[VideoMeta], path: &Path) -> Result<(), Error> {
    let err = |message: String| Error::CatalogCsv {
        path: path.to_path_buf(),
        message,
    };
    // Written aside and renamed, so a reader never sees half a catalog.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let file = std::fs::File::create(&tmp).map_err(|e| err(e.to_string()))?;
    let mut buf = std::io::BufWriter::new(file);
    write_csv(catalog, &mut buf).map_err(|e| err(e.to_string()))?;
    buf.flush().map_err(|e| err(e.to_string()))?;
    drop(buf);
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GenConfig;
    use crate::model::Model;

    #[test]
    fn the_domain_parser_reads_what_we_write() {
        let catalog = Model::new(&GenConfig::default()).catalog();
        let mut bytes = Vec::new();
        write_csv(&catalog, &mut bytes).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("video_id,title,genre,kind,launch_date\n"));
        // Titles with commas or quotes are quoted.
        assert!(text.contains("\""), "some titles need quoting");
        let back = playsource_domain::catalog::parse_csv(&bytes[..]).unwrap();
        assert_eq!(back, catalog);
    }

    #[test]
    fn unwritable_path_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/catalog.csv");
        let err = write_csv_file(&[], &path).unwrap_err().to_string();
        assert!(
            err.contains("catalog.csv") && err.contains("writable"),
            "{err}"
        );
    }
}
