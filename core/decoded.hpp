// Decoded<T>: a value or the reason it could not be decoded.
//
// Every decoder of bytes someone else wrote (Redis documents, NOTIFY payloads, log rows,
// HTTP requests, files) returns one of these instead of throwing: below the event loop a
// refusal is an ordinary result, which the caller counts, logs and drops
// (docs/architecture.md, "Errors").
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace yuxi::config {

// `Reason` is a message by default; a decoder whose callers tell kinds of refusal apart
// gives a struct with a kind and a message instead.
template <class T, class Reason = std::string>
class [[nodiscard]] Decoded {
  public:
    Decoded(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
    static Decoded refused(Reason reason) {
        return Decoded(std::in_place_index<1>, std::move(reason));
    }

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    // Why it was refused; a default Reason when ok().
    const Reason& reason() const noexcept {
        static const Reason none{};
        return ok() ? none : std::get<1>(v_);
    }

  private:
    template <std::size_t I, class... A>
    explicit Decoded(std::in_place_index_t<I> i, A&&... a) : v_(i, std::forward<A>(a)...) {}

    std::variant<T, Reason> v_;
};

// A refusal on its way into a Decoded<T> of any T: `return refuse("why");`.
struct Refused {
    std::string reason;
    template <class T>
    operator Decoded<T>() && {  // NOLINT: implicit, so `return refuse(...)` reads plainly
        return Decoded<T>::refused(std::move(reason));
    }
};

inline Refused refuse(std::string reason) {
    return Refused{std::move(reason)};
}

}  // namespace yuxi::config
