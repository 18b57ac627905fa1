// Package dump is the pipeline.Source for mongodump output read offline: a dump directory or
// an archive file. It also writes both formats (WriteArchive, DirWriter) for tests and for
// `convert archive`.
//
// # Inputs
//
// A directory holds one subdirectory per database with <coll>.bson, .bson.gz or .bson.zst and
// <coll>.metadata.json, .json.gz or .json.zst, named as mongodump names them (path-escaped,
// long names shortened; see EscapeCollectionName). Compression is told by the file extension,
// as mongorestore does. A data file without a metadata file is a Warning; a metadata file
// without a data file is a collection without documents (a view, or a time-series collection
// whose documents are in system.buckets.<name>).
//
// An archive is what mongodump --archive writes (mongo-tools common/archive/spec.md): magic
// number 0x8199e26d, a prelude (header document, one metadata document per namespace,
// terminator 0xFFFFFFFF), then blocks of a namespace header, documents and a terminator,
// interleaved between namespaces, each namespace closed by an EOF header carrying the
// CRC-64/ECMA of its documents' bytes. gzip (mongodump --gzip) and zstd are recognised by
// magic bytes, not by name.
//
// # Ranges, positions and cost
//
// A collection is one range (mapping.md, "Ranges and order"). Positions are byte offsets in
// the uncompressed stream: of the collection's data file in a directory, of the whole archive
// (from its magic number) in an archive. A resume seeks in a plain file and decompresses and
// discards up to the offset in a compressed one.
//
// Scanning one namespace of an archive reads the archive from its start up to that
// namespace's EOF header, skipping the other namespaces' documents without copying them: a
// conversion of N collections reads the archive up to N times (decompressing it each time if
// compressed). A resume inside an archive re-reads from the start too, because the block
// structure and the CRC need every byte before the offset. A CRC mismatch is reported only
// after a second pass confirms it (STYLE practice 11), and after every document of the
// namespace went to the caller.
//
// # Frames and corrupt input
//
// Documents are read with one reused buffer per scan (mongo-tools common/db/bson_stream.go)
// and every length is distrusted: below 5, over 16 MiB + 16 KiB, past the end of a plain file,
// a missing trailing NUL, the stream ending inside a document, a decompressor error, and for
// archives a bad magic number, prelude, header, block structure or CRC are all a
// *pipeline.CorruptError at the byte where the broken frame starts (mapping.md, "Reading BSON
// and corrupt input"). Errors of the file itself (a failing disk) stay I/O errors. A document
// whose frame is intact is delivered whatever its content; the caller validates it strictly.
package dump
