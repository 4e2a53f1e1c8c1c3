// proxy/asio.h — the Asio vocabulary the proxy uses, in one place.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

namespace mongogate::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

template <class T>
using awaitable = asio::awaitable<T>;

// Completion token that reports errors as values (no exceptions on the data path).
inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

}  // namespace mongogate::proxy
