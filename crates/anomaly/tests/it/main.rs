mod detector;
mod nab;
