import SSEBroker

/// Fuzzes the topic matcher against a plain dynamic-programming glob matcher: the input is a pattern
/// and a type separated by the first NUL byte. A pattern the broker accepts must match exactly the
/// types the reference matches; validation must be deterministic.
func fuzzOne(_ input: [UInt8]) {
    let split = input.firstIndex(of: 0) ?? input.count
    let pattern = String(decoding: input[..<split], as: UTF8.self)
    let type = String(decoding: input[min(split + 1, input.count)...], as: UTF8.self)
    guard let topic = try? Topic(pattern) else {
        precondition((try? Topic(pattern)) == nil, "validation is not deterministic")
        return
    }
    let effective = type.isEmpty ? "message" : type
    // Exact topics compare as Swift strings (canonical equivalence, like the fan-out's dictionary);
    // patterns compare bytes.
    let expected = topic.isPattern ? referenceMatch(Array(pattern.utf8), Array(effective.utf8)) : pattern == effective
    precondition(topic.matches(type) == expected, "\(pattern) against \(type): matcher says \(!expected), reference \(expected)")
    precondition(topic.isPattern == pattern.utf8.contains(UInt8(ascii: "*")), "isPattern disagrees")
    if let filter = try? TopicFilter([topic]) {
        precondition(filter.matches(type) == expected, "the filter disagrees with its topic")
    }
}

/// `matches[i][j]`: the first `i` bytes of the pattern match the first `j` of the type.
func referenceMatch(_ pattern: [UInt8], _ type: [UInt8]) -> Bool {
    var previous = [Bool](repeating: false, count: type.count + 1)
    previous[0] = true
    for byte in pattern {
        var current = [Bool](repeating: false, count: type.count + 1)
        if byte == UInt8(ascii: "*") {
            current[0] = previous[0]
            for j in 1...max(1, type.count) where j <= type.count {
                current[j] = previous[j] || current[j - 1]
            }
        } else {
            for j in 1...max(1, type.count) where j <= type.count {
                current[j] = previous[j - 1] && type[j - 1] == byte
            }
        }
        previous = current
    }
    return previous[type.count]
}

/// Nothing to prepare before the first input.
func fuzzSetUp() {}
