import Foundation

/// Sizes, rates, durations, counts, tables and JSON strings as the tool prints them.
enum Format {
    /// `1.5 MiB`.
    static func bytes(_ count: Double) -> String {
        let (value, unit) = scaled(count, step: 1024, units: ["B", "KiB", "MiB", "GiB", "TiB"])
        return unit == "B" ? "\(Int(value)) B" : String(format: "%.1f %@", value, unit)
    }

    /// `2.91 GB/s` (decimal units, as network rates are usually given).
    static func rate(_ bytesPerSecond: Double) -> String {
        let (value, unit) = scaled(bytesPerSecond, step: 1000, units: ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"])
        return String(format: unit == "B/s" ? "%.0f %@" : "%.2f %@", value, unit)
    }

    /// `value` divided by `step` until it is below `step` or the units run out, with the unit
    /// it ends in.
    private static func scaled(_ value: Double, step: Double, units: [String]) -> (Double, String) {
        var value = value
        var unit = 0
        while value >= step && unit < units.count - 1 {
            value /= step
            unit += 1
        }
        return (value, units[unit])
    }

    /// `12.3 ms`, `45 µs`, `1.20 s`.
    static func duration(_ duration: Duration) -> String {
        let seconds = duration.seconds
        if seconds >= 1 { return String(format: "%.2f s", seconds) }
        if seconds >= 0.001 { return String(format: "%.1f ms", seconds * 1e3) }
        return String(format: "%.0f µs", seconds * 1e6)
    }

    /// A number with thousands separators: `1,234,567`.
    static func count(_ value: Double) -> String {
        let whole = Int(value.rounded())
        var digits = String(abs(whole))
        var groups: [String] = []
        while digits.count > 3 {
            groups.insert(String(digits.suffix(3)), at: 0)
            digits.removeLast(3)
        }
        groups.insert(digits, at: 0)
        return (whole < 0 ? "-" : "") + groups.joined(separator: ",")
    }

    /// Pads to a column width.
    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// Rows as a table with a header and aligned columns.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : pad(cell, widths[index])
            }.joined(separator: "  ")
        }
        var text = line(header) + "\n"
        text += line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        for row in rows { text += line(row) + "\n" }
        return text
    }

    /// Text as a JSON string literal.
    static func json(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}
