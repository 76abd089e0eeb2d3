// Package inventory reads the packages installed in a container image from
// the files that record them, as the software that uses those files reads
// them (dpkg, apk-tools, Node and npm, Python's importlib.metadata, the JDK's
// zip reader, Go's debug/buildinfo), within bounds on memory and work that do
// not grow with the input. What an extractor cannot read, or reads only in
// part, it reports as a *ParseError or a *LimitError alongside what it did
// read: never as an empty list.
package inventory
