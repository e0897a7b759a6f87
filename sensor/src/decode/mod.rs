//! Link, network and transport decoding (etherparse) into a borrowed packet view.
