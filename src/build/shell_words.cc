#include "build/shell_words.h"

#include <fnmatch.h>

#include <optional>

namespace shale::build {
namespace {

constexpr int kEof = -1;

Error Syntax(std::string message) { return Error(Errc::kInvalidArgument, std::move(message)); }

bool IsSpace(int ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

// Collects words the way buildkit's wordsStruct does: characters that came from quotes or
// escapes are "raw" and never split; everything else splits on whitespace.
class Words {
 public:
  void AddChar(char ch) {
    if (IsSpace(ch)) {
      if (in_word_ && !word_.empty()) {
        words_.push_back(std::move(word_));
        word_.clear();
        in_word_ = false;
      }
    } else {
      AddRawChar(ch);
    }
  }
  void AddRawChar(char ch) {
    word_ += ch;
    in_word_ = true;
  }
  void AddString(std::string_view s) {
    for (char ch : s) AddChar(ch);
  }
  void AddRawString(std::string_view s) {
    word_ += s;
    in_word_ = true;
  }
  std::vector<std::string> Take() {
    if (!word_.empty()) words_.push_back(std::move(word_));
    return std::move(words_);
  }

 private:
  std::string word_;
  std::vector<std::string> words_;
  bool in_word_ = false;
};

class ShellWord {
 public:
  ShellWord(std::string_view in, const VarMap& env, char escape)
      : in_(in), env_(env), escape_(escape) {}

  Result<std::string> Process(Words* words) {
    std::string result = TRY(ProcessStopOn(kEof, words));
    return result;
  }

 private:
  int Peek() const { return pos_ < in_.size() ? static_cast<unsigned char>(in_[pos_]) : kEof; }
  int Next() { return pos_ < in_.size() ? static_cast<unsigned char>(in_[pos_++]) : kEof; }

  // Reads up to `stop` (consumed) or the end; kEof as `stop` means the whole input.
  Result<std::string> ProcessStopOn(int stop, Words* words) {
    std::string result;
    bool found = false;
    while (Peek() != kEof) {
      int ch = Peek();
      if (stop != kEof && ch == stop) {
        Next();
        found = true;
        break;
      }
      if (ch == '\'' || ch == '"' || ch == '$') {
        std::string part;
        if (ch == '\'') {
          part = TRY(ProcessSingleQuote());
        } else if (ch == '"') {
          part = TRY(ProcessDoubleQuote());
        } else {
          part = TRY(ProcessDollar());
        }
        result += part;
        if (words) {
          // An unquoted expansion splits; a quoted string stays one word.
          if (ch == '$') {
            words->AddString(part);
          } else {
            words->AddRawString(part);
          }
        }
        continue;
      }
      ch = Next();
      if (ch == escape_) {
        // The escape token makes the next character literal; at the very end it vanishes.
        ch = Next();
        if (ch == kEof) break;
        if (words) words->AddRawChar(static_cast<char>(ch));
      } else if (words) {
        words->AddChar(static_cast<char>(ch));
      }
      result += static_cast<char>(ch);
    }
    if (stop != kEof && !found) {
      return Syntax("unexpected end of statement while looking for matching " +
                    std::string(1, static_cast<char>(stop)));
    }
    return result;
  }

  Result<std::string> ProcessSingleQuote() {
    // Everything up to the next ' is literal, the escape token included.
    Next();
    std::string result;
    for (;;) {
      int ch = Next();
      if (ch == kEof) {
        return Syntax("unexpected end of statement while looking for matching single-quote");
      }
      if (ch == '\'') break;
      result += static_cast<char>(ch);
    }
    return result;
  }

  Result<std::string> ProcessDoubleQuote() {
    // Literal up to the next ", except $ expansions; the escape token escapes only
    // " $ and itself, elsewhere it stays (as a shell leaves \n inside "...").
    Next();
    std::string result;
    for (;;) {
      int ch = Peek();
      if (ch == kEof) {
        return Syntax("unexpected end of statement while looking for matching double-quote");
      }
      if (ch == '"') {
        Next();
        break;
      }
      if (ch == '$') {
        result += TRY(ProcessDollar());
        continue;
      }
      ch = Next();
      if (ch == escape_) {
        int n = Peek();
        if (n == kEof) continue;
        if (n == '"' || n == '$' || n == escape_) ch = Next();
      }
      result += static_cast<char>(ch);
    }
    return result;
  }

  static bool IsNameChar(int ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch >= 0x80;
  }
  static bool IsSpecialParam(int ch) {
    return ch == '@' || ch == '*' || ch == '#' || ch == '?' || ch == '-' || ch == '$' ||
           ch == '!' || ch == '0';
  }

  std::string ProcessName() {
    std::string name;
    while (Peek() != kEof) {
      int ch = Peek();
      if (name.empty() && ch >= '0' && ch <= '9') {
        // Positional parameters: $1, $12 (always unset in a Dockerfile).
        while (Peek() >= '0' && Peek() <= '9') name += static_cast<char>(Next());
        return name;
      }
      if (name.empty() && IsSpecialParam(ch)) {
        name += static_cast<char>(Next());
        return name;
      }
      if (!IsNameChar(ch)) break;
      name += static_cast<char>(Next());
    }
    return name;
  }

  std::optional<std::string> Get(const std::string& name) const {
    auto it = env_.find(name);
    if (it == env_.end()) return std::nullopt;
    return it->second;
  }

  Result<std::string> WordUntilBrace() {
    auto word = ProcessStopOn('}', nullptr);
    if (!word && Peek() == kEof) return Syntax("syntax error: missing '}'");
    return word;
  }

  Result<std::string> ProcessDollar() {
    Next();  // '$'
    if (Peek() != '{') {
      std::string name = ProcessName();
      if (name.empty()) return std::string("$");
      return Get(name).value_or("");
    }
    Next();  // '{'
    int first = Peek();
    if (first == kEof) return Syntax("syntax error: missing '}'");
    if (first == '{' || first == '}' || first == ':') return Syntax("syntax error: bad substitution");
    std::string name = ProcessName();
    int ch = Next();
    std::optional<std::string> value = Get(name);
    switch (ch) {
      case '}':
        return value.value_or("");
      case kEof:
        return Syntax("syntax error: missing '}'");
      case ':': {
        int modifier = Next();
        std::string word = TRY(WordUntilBrace());
        std::string v = value.value_or("");
        switch (modifier) {
          case '+':
            return v.empty() ? std::string() : word;
          case '-':
            return v.empty() ? word : v;
          case '?':
            if (!value) return Syntax(name + ": " + (word.empty() ? "is not allowed to be unset" : word));
            if (v.empty()) return Syntax(name + ": " + (word.empty() ? "is not allowed to be empty" : word));
            return v;
          default:
            return Syntax("unsupported modifier (" + std::string(1, static_cast<char>(modifier)) +
                          ") in substitution");
        }
      }
      case '+':
      case '-':
      case '?': {
        std::string word = TRY(WordUntilBrace());
        if (ch == '+') return value ? word : std::string();
        if (ch == '-') return value ? *value : word;
        if (!value) return Syntax(name + ": " + (word.empty() ? "is not allowed to be unset" : word));
        return *value;
      }
      case '#':
      case '%': {
        bool longest = Peek() == ch;
        if (longest) Next();
        std::string pattern = TRY(WordUntilBrace());
        return RemoveAffix(value.value_or(""), pattern, ch == '#', longest);
      }
      case '/': {
        bool all = Peek() == '/';
        if (all) Next();
        std::string pattern = TRY(ProcessStopOn('/', nullptr));
        std::string replacement = TRY(WordUntilBrace());
        return Replace(value.value_or(""), pattern, replacement, all);
      }
      default:
        return Syntax("unsupported modifier (" + std::string(1, static_cast<char>(ch)) +
                      ") in substitution");
    }
  }

  // Shell glob matching is fnmatch(3) without FNM_PATHNAME: '*' also matches '/', as in sh.
  static bool Glob(const std::string& pattern, const std::string& s) {
    return fnmatch(pattern.c_str(), s.c_str(), 0) == 0;
  }

  static std::string RemoveAffix(const std::string& v, const std::string& pattern, bool prefix,
                                 bool longest) {
    size_t n = v.size();
    for (size_t k = 0; k <= n; ++k) {
      size_t len = longest ? n - k : k;
      std::string part = prefix ? v.substr(0, len) : v.substr(n - len);
      if (Glob(pattern, part)) return prefix ? v.substr(len) : v.substr(0, n - len);
    }
    return v;
  }

  static std::string Replace(const std::string& v, const std::string& pattern,
                             const std::string& replacement, bool all) {
    if (pattern.empty()) return v;
    std::string out;
    size_t i = 0;
    bool replaced = false;
    while (i < v.size()) {
      size_t match_len = 0;
      if (all || !replaced) {
        // Leftmost, then longest non-empty match, like a greedy regex.
        for (size_t len = v.size() - i; len > 0; --len) {
          if (Glob(pattern, v.substr(i, len))) {
            match_len = len;
            break;
          }
        }
      }
      if (match_len > 0) {
        out += replacement;
        i += match_len;
        replaced = true;
      } else {
        out += v[i++];
      }
    }
    return out;
  }

  std::string_view in_;
  size_t pos_ = 0;
  const VarMap& env_;
  int escape_;
};

}  // namespace

Result<std::string> Lexer::ProcessWord(std::string_view word, const VarMap& env) const {
  ShellWord sw(word, env, escape_);
  return sw.Process(nullptr);
}

Result<std::vector<std::string>> Lexer::ProcessWords(std::string_view input,
                                                     const VarMap& env) const {
  ShellWord sw(input, env, escape_);
  Words words;
  TRY(sw.Process(&words));
  return words.Take();
}

}  // namespace shale::build
